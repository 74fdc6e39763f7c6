"""The Gradio chat: a thin layer over `rag.ask_stream` (formatting and event wiring only)."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import socket
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

# Offline means offline: no usage analytics or version checks from Gradio (set before it is imported).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr
from starlette.middleware import Middleware

import rag
from rag.answer.answerers import backend_name
from rag.config import Settings, get_settings
from rag.library import library_for
from ui.export import conversation_markdown
from ui.format import code_span, escape, format_answer, format_error, format_partial
from ui.guard import Guard, LoginThrottle
from ui.library import CSS as LIBRARY_CSS
from ui.library import build_library_tab

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
        f"answers by {code_span(backend_name(settings))} · every citation is checked against the retrieved abstracts"
    )


Update = tuple[str, Chat, History]
HISTORY_TURNS = 50  # messages a session keeps (25 questions and answers): follow-ups and the export use these
FAILED = "Something went wrong answering this; see the server log."


def respond(
    message: str, chat: Chat, history: History, k: float, settings: Settings, standalone: bool = False
) -> Iterator[Update]:
    """Stream one answer into the chat; errors become a readable message, never a traceback.

    `standalone`: ask it as a new question, without the conversation (the "Searched for" button).
    """
    chat = [*chat, {"role": "user", "content": escape(message)}]
    turn_start = len(chat)
    chat.append({"role": "assistant", "content": "…"})
    yield "", chat, history
    draft = ""
    try:
        asked = [] if standalone else history
        for item in rag.ask_stream(message, history=asked, k=int(k), settings=settings):
            if isinstance(item, rag.Answer):
                chat = chat[:turn_start] + format_answer(item)
                turn = {  # "cited" is what a follow-up reads; "text", "citations" and "searched" are for the page
                    "role": "assistant",
                    "content": item.text,
                    "cited": [c.paper_id for c in item.citations],
                    "text": item.text,
                    "searched": item.standalone_question,
                    "citations": [
                        {"title": c.title, "paper_id": c.paper_id, "evidence": c.evidence} for c in item.citations
                    ],
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
    """The chat with its last answer, if it was still streaming, marked as stopped."""
    last = _text(chat[-1].get("content")) if chat else ""
    if chat and chat[-1].get("role") == "assistant" and last.rstrip().endswith("▍"):
        partial = last.rstrip().removesuffix("▍").rstrip()
        return [*chat[:-1], {"role": "assistant", "content": f"{partial}\n\n{STOPPED}"}]
    return chat


def build_app(settings: Settings | None = None, read_only: bool = False) -> gr.Blocks:
    """The chat tab and the Library tab; `read_only` leaves out upload and removal (and their API)."""
    s = settings or get_settings()
    papers = library_for(s).count()
    demo: gr.Blocks
    # Gradio keeps uploads and files it serves in its cache: delete what is older than an hour, every 10 minutes.
    with gr.Blocks(title="Ask the papers", analytics_enabled=False, delete_cache=(600, 3600)) as demo:
        head = gr.Markdown(header(s, papers), elem_id="header")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat-tab", elem_id="chat-tab"):
                _chat(s)
            with gr.Tab("Library", id="library-tab", elem_id="library-tab"):
                parts = build_library_tab(s, read_only, s.upload_max_mb)

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


def _chat(s: Settings) -> None:
    chatbot = gr.Chatbot(
        height=560,
        label="Conversation",
        elem_id="chat",
        feedback_options=None,
        latex_delimiters=[],
        sanitize_html=True,
        allow_tags=False,
        placeholder="Ask a question about the papers; answers cite the abstracts they rest on.",
    )
    history = gr.State([])  # per browser session: each tab has its own conversation
    with gr.Row():
        box = gr.Textbox(placeholder="Ask about the papers…", show_label=False, scale=8, elem_id="question")
        send = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
        stop = gr.Button("Stop", scale=1, elem_id="stop", variant="stop")
        new = gr.Button("New chat", scale=1, elem_id="new-chat")
    with gr.Row():
        as_new = gr.Button(
            "Ask it as a new question", visible=False, size="sm", elem_id="ask-standalone", scale=0, min_width=220
        )
        export = gr.Button("Export as Markdown", interactive=False, size="sm", elem_id="export", scale=0, min_width=180)
    exported = gr.Textbox(visible=False, elem_id="export-text")
    gr.Examples(examples=[[q] for q in EXAMPLES], inputs=[box], label="Examples")
    with gr.Accordion("Settings", open=False):
        k = gr.Slider(1, 10, value=s.top_k, step=1, label="Sources to retrieve (k)")
        gr.Markdown(
            f"Model: **{backend_name(s)}** — set `RAG_LLM`, `OPENAI_BASE_URL` and `RAG_CHAT_MODEL` to change it. "
            f"Index: `{s.index_location()}`."
        )

    def answer(message: str, chat: Chat, hist: History, k_value: float) -> Iterator[Update]:
        yield from respond(message, chat, hist, k_value, s)

    def answer_as_new(chat: Chat, hist: History, k_value: float) -> Iterator[Update]:
        question = rewritten_question(hist)
        if question is not None:
            yield from respond(question, chat, hist, k_value, s, standalone=True)

    def after_answer(hist: History) -> tuple[Any, Any]:
        rewritten = rewritten_question(hist)
        return gr.update(interactive=bool(hist)), gr.update(visible=rewritten is not None)

    def export_markdown(hist: History) -> str:
        cited = {str(c["paper_id"]) for turn in hist for c in turn.get("citations") or []}
        sources_of = {p.paper_id: p.sources for p in rag.indexed_papers(settings=s, ids=sorted(cited))} if cited else {}
        return conversation_markdown(hist, sources_of)

    answering = []
    for trigger in (box.submit, send.click):
        event = trigger(answer, [box, chatbot, history, k], [box, chatbot, history])
        event.then(after_answer, [history], [export, as_new])
        answering.append(event)
    # "Searched for: …" differs from what was typed: one click asks it again, as typed, without the conversation.
    again = as_new.click(answer_as_new, [chatbot, history, k], [box, chatbot, history])
    again.then(after_answer, [history], [export, as_new])
    answering.append(again)
    # Stop ends the stream where it is (a chat model stops generating); the partial answer says so.
    stop.click(mark_stopped, [chatbot], [chatbot], cancels=cast(Any, answering), queue=False)
    new.click(lambda: ("", [], []), None, [box, chatbot, history], queue=False).then(
        after_answer, [history], [export, as_new]
    )
    # Export only when asked, and nothing is written on the server: the browser saves the text it is sent.
    export.click(export_markdown, [history], [exported]).then(None, [exported], None, js=SAVE_MARKDOWN_JS)


SAVE_MARKDOWN_JS = """(text) => {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text], {type: "text/markdown;charset=utf-8"}));
  const now = new Date(Date.now() - new Date().getTimezoneOffset() * 60000).toISOString();
  link.download = "conversation-" + now.slice(0, 19).replace(/[-:]/g, "").replace("T", "-") + ".md";
  document.body.appendChild(link); link.click(); link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}"""


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
        css=LIBRARY_CSS,
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
    parser = argparse.ArgumentParser(prog="python -m ui.app", description="The chat UI over the papers.")
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
