"""The Gradio chat: a thin layer over `rag.ask_stream` (formatting and event wiring only)."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

# Offline means offline: no usage analytics or version checks from Gradio (set before it is imported).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr
from starlette.middleware import Middleware

import rag
from rag.answer.answerers import backend_name
from rag.config import Settings, get_settings
from rag.library import library_for

from .export import conversation_markdown, save_js
from .filters import filter_controls, filter_note, where_from
from .format import MATH_DELIMITERS, code_span, escape, format_answer, format_error, format_partial
from .guard import Guard, LoginThrottle
from .library import CSS as LIBRARY_CSS
from .library import build_library_tab

log = logging.getLogger(__name__)

EXAMPLES = [  # one per answer shape: list, explanation, comparison, detail, lookup
    "Which papers study the minimum width networks need to be universal approximators?",
    "What are emergent abilities of large language models?",
    "How does the leaky-ReLU minimum width result compare with the ReLU one?",
    "By how much does QZO reduce memory when fine-tuning 4-bit LLMs?",
    "Do networks trained from different seeds learn the same neurons?",
]
Chat = list[dict[str, Any]]
History = list[dict[str, Any]]  # role and content; assistant turns also carry the export's text and citations


def header(settings: Settings, papers: int) -> str:
    return (
        f"### Ask the papers\n{papers} papers · index: {code_span(settings.index_location())} · "
        f"answers: {_answers_by(backend_name(settings))} · every citation is checked against the retrieved abstracts"
    )


def _answers_by(label: str) -> str:
    return "offline quotes from the abstracts" if label == "extractive" else code_span(label)


Update = tuple[str, Chat, History]
Trigger = Callable[..., Any]  # an event listener: box.submit, button.click, event.then
HISTORY_TURNS = 50  # messages a session keeps (25 questions and answers): follow-ups and the export use these
FAILED = "Something went wrong answering this; see the server log."


def respond(
    message: str,
    chat: Chat,
    history: History,
    k: float,
    settings: Settings,
    standalone: bool = False,
    only: Sequence[str] = ("", "", "", ""),
    stopped: Callable[[], bool] = lambda: False,
) -> Iterator[Update]:
    """Stream one answer into the chat; errors become a readable message, never a traceback.

    `standalone`: ask it as a new question, without the conversation (the "Searched for" button).
    `only`: the filter boxes as typed (years, author, source file, arXiv category).
    `stopped`: asked before each piece is shown; once true, the partial answer is marked and the stream closed
    (which ends the model's generation), and the turn is not kept in the history.
    """
    chat = [*chat, {"role": "user", "content": escape(message)}]
    turn_start = len(chat)
    chat.append({"role": "assistant", "content": "…"})
    yield "", chat, history
    draft = ""
    try:
        asked = [] if standalone else history
        where = where_from(*only)
        pieces = rag.ask_stream(message, history=asked, k=int(k), settings=settings, where=where)
        for item in pieces:
            if stopped():
                pieces.close()  # closes the model's stream: it stops generating
                yield "", mark_stopped(chat), history
                return
            if isinstance(item, rag.Answer):
                chat = chat[:turn_start] + format_answer(item, filter_note(where))
                turn = {  # "cited" is what a follow-up reads; "text", "citations" and "searched" are for the page
                    "role": "assistant",
                    "content": item.text,
                    "cited": [c.paper_id for c in item.citations],
                    "text": item.text,
                    "searched": item.standalone_question,
                    "citations": [_kept(c) for c in item.citations],
                }
                history = [*history, {"role": "user", "content": message}, turn][-HISTORY_TURNS:]
            else:
                draft += item
                chat = [*chat[:turn_start], {"role": "assistant", "content": format_partial(draft)}]
            yield "", chat, history
    except (ValueError, TypeError, rag.BackendError, rag.RagIndexError) as exc:
        chat = [*chat[:turn_start], {"role": "assistant", "content": format_error(str(exc))}]
        yield message, chat, history
    except Exception:
        log.exception("answering %r failed", message[:200])
        chat = [*chat[:turn_start], {"role": "assistant", "content": format_error(FAILED)}]
        yield message, chat, history


def _kept(citation: rag.Citation) -> dict[str, Any]:
    """What a session keeps of a citation for the export and Cite (not the abstract: sessions stay small)."""
    return {k: v for k, v in citation.to_dict().items() if k != "abstract"}


def rewritten_question(history: History) -> str | None:
    """The last question, if it was searched as something else (a follow-up read with the conversation)."""
    if len(history) < 2 or history[-1].get("role") != "assistant":
        return None
    question, searched = str(history[-2].get("content", "")), str(history[-1].get("searched", ""))
    return question if searched and searched != question else None


STOPPED = "*— stopped before the end; this partial answer is unverified.*"


def _text(content: Any) -> str:
    """A message's text, whether Gradio hands it back as a string or as a list of typed parts."""
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


def mark_stopped(chat: Chat) -> Chat:
    """The chat with its last answer, if it was still streaming (a draft, or "…" before the first word), marked
    as stopped."""
    last = _text(chat[-1].get("content")).rstrip() if chat else ""
    if chat and chat[-1].get("role") == "assistant" and last.endswith(("▍", "…")):
        partial = last.removesuffix("▍").removesuffix("…").rstrip()
        return [*chat[:-1], {"role": "assistant", "content": f"{partial}\n\n{STOPPED}".lstrip()}]
    return chat


class StopRequests:
    """Stop pressed, per browser session, until that session's stream sees it.

    The stream ends itself rather than being cancelled by Gradio: a cancelled generator's last piece can still
    reach the page after the stop marked it, and leave a draft that looks like it is still being written.
    """

    def __init__(self) -> None:
        self._sessions: set[str] = set()
        self._lock = threading.Lock()

    def press(self, session: str) -> None:
        with self._lock:
            self._sessions.add(session)

    def seen(self, session: str) -> bool:
        """True once after `press` (the stream that sees it stops); also clears a press left from before."""
        with self._lock:
            if session in self._sessions:
                self._sessions.discard(session)
                return True
            return False


def build_app(settings: Settings | None = None, read_only: bool = False) -> gr.Blocks:
    """The chat tab and the Library tab; `read_only` leaves out upload and removal (and their API)."""
    s = settings or get_settings()
    papers = library_for(s).count()
    demo: gr.Blocks
    # Gradio keeps uploads and files it serves in its cache: delete what is older than an hour, every 10 minutes.
    with gr.Blocks(title="Ask the papers", analytics_enabled=False, delete_cache=(600, 3600)) as demo:
        head = gr.Markdown(header(s, papers), elem_id="header")
        with gr.Tabs() as tabs:
            with gr.Tab("Chat", id="chat-tab", elem_id="chat-tab"):
                ask_from = _chat(s)
            with gr.Tab("Library", id="library-tab", elem_id="library-tab"):
                parts = build_library_tab(s, read_only, s.upload_max_mb)
        # "Ask about this paper" under a Library abstract: to the chat, asking about that paper by its title.
        ask_from(_filling(parts["ask_about"], parts["selected"], tabs))

        def current_header() -> str:
            return header(s, library_for(s).count())

        for event in ("add", "removed"):
            if event in parts:
                parts[event].then(current_header, None, [head])
        # Components hold the values they were built with: a page opened later shows the collection as it is.
        demo.load(current_header, None, [head])
        for key in ("load", "load_choices"):
            if key in parts:
                fn, outputs = parts[key]
                demo.load(fn, None, outputs)
    demo.queue(default_concurrency_limit=s.ui_concurrency)
    return demo


def _filling(button: gr.Button, question: str | gr.State, tabs: gr.Tabs | None = None) -> Trigger:
    """A trigger for `ask_from`: a click puts the question (an example's text, or the Library's selected title
    asked about) in the box, shows the chat tab, then runs the asking steps chained on it."""

    def fill(title: str = "") -> Any:
        text = question if isinstance(question, str) else f'What does the paper "{title}" find?'
        return (text, gr.Tabs(selected="chat-tab")) if tabs is not None else text

    def trigger(fn: Any, inputs: list[Any], outputs: list[Any], **kw: Any) -> Any:
        filled = [inputs[0], tabs] if tabs is not None else [inputs[0]]  # inputs[0]: the question box
        given = [] if isinstance(question, str) else [question]
        return button.click(fill, given, filled, queue=False).then(fn, inputs, outputs, **kw)

    return trigger


def _chat(s: Settings) -> Callable[[Trigger], None]:
    """The chat tab; returns what makes another event ask the question then in the box (with Stop and all)."""
    chatbot = gr.Chatbot(
        height=560,
        label="Conversation",
        elem_id="chat",
        feedback_options=None,
        latex_delimiters=MATH_DELIMITERS,  # math is marked by ui.format.escape; a bare "$" is never math
        autoscroll=False,  # SCROLL_JS shows the start of each new answer instead of the end
        sanitize_html=True,
        allow_tags=False,
        placeholder="Ask a question about the papers; answers cite the abstracts they rest on.",
    )
    history = gr.State([])  # per browser session: each tab has its own conversation
    as_typed = gr.State(False)  # `answer`'s anew: False for the box, True for "Ask it as a new question"
    with gr.Row():
        box = gr.Textbox(placeholder="Ask about the papers…", show_label=False, scale=8, elem_id="question")
        send = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
        stop = gr.Button("Stop", scale=1, elem_id="stop", variant="secondary", interactive=False)
        new = gr.Button("New chat", scale=1, elem_id="new-chat")
    with gr.Row():
        as_new = gr.Button(
            "Ask it as a new question", visible=False, size="sm", elem_id="ask-standalone", scale=0, min_width=220
        )
        export = gr.Button("Export as Markdown", interactive=False, size="sm", elem_id="export", scale=0, min_width=180)
        cite = gr.Button("Cite (BibTeX)", interactive=False, size="sm", elem_id="cite", scale=0, min_width=140)
    exported = gr.Textbox(visible=False, elem_id="export-text")
    cited_bibtex = gr.Textbox(visible=False, elem_id="cite-text")
    # Examples as buttons showing their whole question (gr.Examples cuts them at 60 characters); a click asks.
    with gr.Column(elem_id="examples"):
        gr.Markdown("Examples", elem_id="examples-label")
        with gr.Row():
            example_buttons = [gr.Button(q, size="sm", variant="secondary", min_width=220) for q in EXAMPLES]
    with gr.Accordion("Settings", open=False):
        k = gr.Slider(1, 10, value=s.top_k, step=1, label="Sources to retrieve (k)")
        gr.Markdown("Answer only from papers… (empty boxes: all papers)")
        only = filter_controls("chat")
        gr.Markdown(
            f"Model: **{backend_name(s)}** — set `RAG_LLM`, `OPENAI_BASE_URL` and `RAG_CHAT_MODEL` to change it. "
            f"Index: `{s.index_location()}`."
        )

    stops = StopRequests()

    def stopper(request: gr.Request | None) -> Callable[[], bool]:
        session = (request.session_hash if request else None) or ""
        stops.seen(session)  # a press that came after the last stream ended is not for this one
        return lambda: stops.seen(session)

    # The filter boxes are named parameters: Gradio gives the request only to a parameter after named ones.
    def answer(
        message: str,
        chat: Chat,
        hist: History,
        k_value: float,
        years: str,
        author: str,
        source: str,
        category: str,
        anew: bool,
        request: gr.Request,
    ) -> Iterator[Update]:
        """Answer the question in the box or, `anew`, the last question as typed, without the conversation."""
        question = (rewritten_question(hist) or "") if anew else message
        if question.strip():  # an empty question does nothing
            only = (years, author, source, category)
            yield from respond(question, chat, hist, k_value, s, standalone=anew, only=only, stopped=stopper(request))

    def press_stop(chat: Chat, request: gr.Request | None = None) -> tuple[Chat, Any]:
        stops.press((request.session_hash if request else None) or "")
        return mark_stopped(chat), gr.update(interactive=False)

    def after_answer(hist: History) -> tuple[Any, Any, Any, Any]:
        rewritten = rewritten_question(hist)
        cited = any(turn.get("citations") for turn in hist)
        return (
            gr.update(interactive=bool(hist)),
            gr.update(visible=rewritten is not None),
            gr.update(interactive=cited),
            gr.update(interactive=False),  # Stop: nothing streams any more
        )

    def export_markdown(hist: History) -> str:
        return conversation_markdown(hist)

    def cite_bibtex(hist: History) -> str:
        """Every paper the conversation cited, in the order first cited, as BibTeX (abstracts from the index)."""
        ids = list(dict.fromkeys(str(c["paper_id"]) for turn in hist for c in turn.get("citations") or []))
        found = {p.paper_id: p for p in rag.indexed_papers(settings=s, ids=ids)} if ids else {}
        return rag.to_bibtex(found[pid] for pid in ids if pid in found)

    after = [export, as_new, cite, stop]

    def ask_from(trigger: Trigger) -> None:
        # Stop is enabled while an answer streams: from the click (when there is a question) to the end.
        started = trigger(lambda m: gr.update(interactive=bool(m.strip())), [box], [stop], queue=False)
        event = started.then(answer, [box, chatbot, history, k, *only, as_typed], [box, chatbot, history])
        event.then(after_answer, [history], after)

    for trigger in (box.submit, send.click):
        ask_from(trigger)
    for button, question in zip(example_buttons, EXAMPLES, strict=True):
        ask_from(_filling(button, question))
    # "Searched for: …" differs from what was typed: one click asks it again, as typed, without the conversation.
    started = as_new.click(lambda: gr.update(interactive=True), None, [stop], queue=False)
    anew = gr.State(True)
    again = started.then(answer, [box, chatbot, history, k, *only, anew], [box, chatbot, history])
    again.then(after_answer, [history], after)
    # Stop marks the partial answer at once; the stream ends itself at its next piece (the model stops generating).
    stop.click(press_stop, [chatbot], [chatbot, stop], queue=False)
    new.click(lambda: ("", [], []), None, [box, chatbot, history], queue=False).then(after_answer, [history], after)
    # Export only when asked, and nothing is written on the server: the browser saves the text it is sent.
    export.click(export_markdown, [history], [exported]).then(None, [exported], None, js=save_js("md"))
    cite.click(cite_bibtex, [history], [cited_bibtex]).then(None, [cited_bibtex], None, js=save_js("bib"))
    return ask_from


# The chat does not follow the stream to its end: when a question is added, it is scrolled to the top of the
# conversation, so the answer is read from its first line as it streams in below. On a phone, where the page is
# scrolled down to the question box, the page scrolls back up to the conversation too.
SCROLL_JS = """() => {
  let asked = 0, pinned = null, expected = null;
  const watched = new WeakSet();
  new MutationObserver(() => {
    const view = document.querySelector("#chat .bubble-wrap");
    if (!view) return;
    if (!watched.has(view)) {  // the reader scrolling away unpins the question
      watched.add(view);
      view.addEventListener("scroll", () => {
        if (expected !== null && Math.abs(view.scrollTop - expected) > 2) pinned = null;
      });
    }
    const questions = view.querySelectorAll(".message-row.user-row");
    const added = questions.length > asked;
    if (questions.length !== asked) pinned = added ? questions[questions.length - 1] : null;
    asked = questions.length;
    const box = view.getBoundingClientRect();
    if (added && (box.top < 0 || box.top > window.innerHeight - 120)) view.scrollIntoView({block: "start"});
    if (pinned && pinned.isConnected) {  // keep the question at the top while its answer grows below it
      // 36 px down: clear of the chat's own buttons
      view.scrollTop += pinned.getBoundingClientRect().top - view.getBoundingClientRect().top - 36;
      expected = view.scrollTop;
    }
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
}"""


CHAT_CSS = """
#chat pre, #chat pre code { white-space: pre-wrap; overflow-wrap: anywhere; }
#examples button { white-space: normal; text-align: left; font-weight: normal; }
"""

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """("user", "password") from "user:password"; ValueError saying the form otherwise."""
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ValueError("--auth / RAG_UI_AUTH must be user:password (both non-empty)")
    return user, password


def read_auth_file(path: Path) -> list[tuple[str, str]]:
    """The logins of an auth file: one user:password per line (blank lines and # comments skipped)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read the auth file {path}: {exc.strerror or exc}") from None
    logins = []
    for number, line in enumerate(lines, start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            try:
                logins.append(parse_auth(line.strip()))
            except ValueError:
                raise ValueError(f"{path}:{number}: each line must be user:password") from None
    if not logins:
        raise ValueError(f"the auth file {path} holds no user:password line")
    return [login for login in logins if login is not None]


def launch(
    host: str = "127.0.0.1",
    port: int = 7860,
    share: bool = False,
    settings: Settings | None = None,
    auth: str | None = None,
    read_only: bool = False,
    auth_file: Path | None = None,
) -> None:
    """Serve the app. Beyond loopback it needs a login (`auth`, RAG_UI_AUTH or `auth_file`) or `read_only`."""
    s = settings or get_settings()
    one = parse_auth(auth or (s.ui_auth.get_secret_value() if s.ui_auth else None))
    logins = read_auth_file(auth_file) if auth_file else ([one] if one else [])
    if (host not in LOOPBACK or share) and not logins and not read_only:
        raise ValueError(
            f"binding to {host}{' with a share link' if share else ''} lets others add and remove papers: "
            "add --auth user:password (or set RAG_UI_AUTH, or --auth-file FILE), or --read-only"
        )
    check_port_free(host, port)
    if not rag.index_exists(s):
        print(f"building the index of the bundled papers at {s.index_location()} (first run only)…", flush=True)
        rag.ingest(settings=s, progress=True)
    demo = build_app(s, read_only=read_only)
    print(f"open http://{host}:{port} in your browser (Ctrl-C to stop)", flush=True)
    demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        show_error=False,
        inbrowser=False,
        auth=logins or None,
        max_file_size=f"{s.upload_max_mb}mb",
        css=CHAT_CSS + LIBRARY_CSS,
        js=SCROLL_JS,
        # Each browser session's state (its conversation, a copy of the page's values) is kept for the
        # `ui_sessions` most recently active ones: memory stays bounded however many visitors come.
        state_session_capacity=s.ui_sessions,
        app_kwargs={"middleware": [Middleware(Guard, read_only=read_only, throttle=LoginThrottle())]},
    )


def check_port_free(host: str, port: int) -> None:
    """A ValueError naming --port when `port` on `host` is taken (checked before anything is printed)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no conflict
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ValueError(f"port {port} on {host} is already in use; choose another with --port") from None
            raise ValueError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}); check --host and --port"
            ) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.ui.app", description="The chat UI over the papers.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true", help="also create a public Gradio share link")
    parser.add_argument("--auth", metavar="USER:PASSWORD")
    parser.add_argument("--auth-file", type=Path, metavar="FILE")
    parser.add_argument("--read-only", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="rag-ui: %(message)s")
    launch(args.host, args.port, args.share, auth=args.auth, read_only=args.read_only, auth_file=args.auth_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
