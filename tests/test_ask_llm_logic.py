"""The chat-model path's logic with a scripted fake model (the real server is in test_local_model.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

import rag
from rag import registry
from rag.answer import answerers
from rag.answer.answerers import BackendError, backend_name, resolve
from rag.answer.answerers import chat as chat_answerer
from rag.answer.followup import FollowUp
from rag.config import Settings
from tests.helpers import free_port


@pytest.fixture
def llm_settings(bundled_settings: Settings) -> Settings:
    return bundled_settings.with_overrides(
        **{"llm": "openai", "openai_base_url": "http://127.0.0.1:9/v1", "chat_model": "fake"}
    )


def script(monkeypatch: pytest.MonkeyPatch, *replies: str) -> None:
    """Make the chat model answer with `replies`, in order."""
    queue: Iterator[AIMessage] = iter([AIMessage(content=r) for r in replies])
    model = GenericFakeChatModel(messages=queue)
    monkeypatch.setattr(chat_answerer, "chat_model", lambda settings, streaming=False: model)


def test_hallucinated_marker_and_title_are_dropped(monkeypatch: pytest.MonkeyPatch, llm_settings: Settings) -> None:
    script(
        monkeypatch,
        "Emergent abilities are not present in smaller models but are present in larger models [1]. "
        'This was first shown in "Attention Is All You Need" [7].',
    )
    answer = rag.ask("What are emergent abilities of large language models?", settings=llm_settings)
    assert not answer.abstained
    assert [c.title for c in answer.citations] == ["Emergent Abilities of Large Language Models"]
    assert {d.cited for d in answer.dropped_citations} >= {"[7]", "Attention Is All You Need"}
    assert "[7]" not in answer.text and "Attention" not in answer.text  # the sentence rests on no source
    assert answer.backend == "openai-compatible:fake@127.0.0.1:9"


def test_uncited_answer_is_not_shown(monkeypatch: pytest.MonkeyPatch, llm_settings: Settings) -> None:
    script(monkeypatch, "Networks of any size are a well known fact of life.")
    # The answerability model finds only partial support here: nothing verified is shown, and it says why.
    answer = rag.ask(
        "How can weights for networks of any size be sampled without retraining them?", settings=llm_settings
    )
    assert answer.abstained and answer.citations == [] and answer.confidence < 0.88
    assert "nothing the model wrote matches the abstracts" in answer.text


def test_an_unverifiable_answer_gives_way_to_the_quotes_when_the_sources_clearly_answer(
    monkeypatch: pytest.MonkeyPatch, llm_settings: Settings
) -> None:
    for reply in ("Emergent abilities are a well known fact of life.", "The collection does not answer this."):
        script(monkeypatch, reply)
        answer = rag.ask("What are emergent abilities of large language models?", settings=llm_settings)
        assert not answer.abstained and answer.support == "strong"
        assert [c.title for c in answer.citations] == ["Emergent Abilities of Large Language Models"]
        assert answer.citations[0].evidence in answer.citations[0].abstract  # quoted, true by construction
        assert "fact of life" not in answer.text
        assert answer.backend == "extractive, as openai-compatible:fake@127.0.0.1:9's answer could not be verified"


def test_model_abstention_is_reported(monkeypatch: pytest.MonkeyPatch, llm_settings: Settings) -> None:
    script(monkeypatch, "The collection does not answer this.")
    answer = rag.ask("What learning rate did the lottery ticket paper use?", settings=llm_settings)
    assert answer.abstained and answer.text.startswith("The collection does not answer this")


def test_streams_model_pieces_then_answer(monkeypatch: pytest.MonkeyPatch, llm_settings: Settings) -> None:
    script(monkeypatch, "Larger models show abilities absent in smaller models [1].")
    items = list(rag.ask_stream("What are emergent abilities of large language models?", settings=llm_settings))
    pieces = [i for i in items if isinstance(i, str)]
    assert len(pieces) > 3 and "".join(pieces).startswith("Larger models")
    assert isinstance(items[-1], rag.Answer) and items[-1].citations


def test_follow_up_is_condensed_by_the_model(monkeypatch: pytest.MonkeyPatch, llm_settings: Settings) -> None:
    script(
        monkeypatch,
        "How does the minimum width of leaky-ReLU networks compare with ReLU networks on a compact domain?",
        "Leaky-ReLU networks need width max(d_x+1, d_y) plus one in some cases [1].",
    )
    history = [
        {"role": "user", "content": "What is the minimum width of ReLU nets?"},
        {"role": "assistant", "content": "..."},
    ]
    answer = rag.ask("And how does it compare?", history=history, settings=llm_settings)  # cannot stand alone
    assert answer.standalone_question.startswith("How does the minimum width of leaky-ReLU")
    assert "Minimum Width of Leaky-ReLU Neural Networks for Uniform Universal Approximation" in [
        h.title for h in answer.sources
    ]


def test_unreachable_server_is_a_clear_error_not_a_fallback(bundled_settings: Settings) -> None:
    settings = bundled_settings.with_overrides(
        **{
            "llm": "auto",
            "openai_base_url": f"http://127.0.0.1:{free_port()}/v1",
            "llm_max_retries": 0,
            "llm_timeout": 10,
        }
    )
    with pytest.raises(
        BackendError, match=r"openai-compatible:gpt-4o-mini@127\.0\.0\.1:\d+ is unreachable.*OPENAI_BASE_URL"
    ):
        rag.ask("What are emergent abilities of large language models?", settings=settings)


def test_backend_resolution(bundled_settings: Settings) -> None:
    assert resolve(bundled_settings) == "extractive"
    with_key = bundled_settings.with_overrides(openai_api_key="sk-secret-value")
    assert resolve(with_key) == "openai" and backend_name(with_key) == "openai:gpt-4o-mini"
    forced = with_key.with_overrides(llm="extractive")
    assert resolve(forced) == "extractive"
    assert "sk-secret-value" not in repr(with_key)


class EchoAnswerer:
    """A backend added the way any backend is: one class, one registry line."""

    @classmethod
    def configured(cls, settings: Settings) -> bool:
        return False

    def label(self, settings: Settings) -> str:
        return "echo"

    def condense(self, question: str, history: list[dict[str, str]], followup: FollowUp, settings: Settings) -> str:
        return question

    def answer(self, request: answerers.Request) -> Iterator[str | answerers.Result]:
        first = request.sources[0]
        yield "Quoting. "
        citation = rag.Citation(first.title, first.hit.paper_id, first.sentences[0], first.abstract)
        yield answerers.Result(f"{first.sentences[0]} [1]", [citation], False)


def test_a_new_backend_is_one_class_and_one_registry_line(
    monkeypatch: pytest.MonkeyPatch, bundled_settings: Settings
) -> None:
    monkeypatch.setitem(registry.ANSWERERS, "echo", f"{__name__}:EchoAnswerer")
    settings = bundled_settings.with_overrides(llm="echo")
    items = list(rag.ask_stream("What are emergent abilities of large language models?", settings=settings))
    answer = items[-1]
    assert isinstance(answer, rag.Answer) and items[0] == "Quoting. "
    assert answer.backend == "echo" and answer.citations[0].title == "Emergent Abilities of Large Language Models"
    with pytest.raises(ValueError, match="must be auto or one of: openai, extractive, echo"):
        bundled_settings.with_overrides(llm="nope")


def test_a_model_that_sends_no_token_is_an_error_not_a_hang(bundled_settings: Settings) -> None:
    """A server that accepts the request and then says nothing: no token for RAG_LLM_TIMEOUT seconds is an error."""
    import http.server
    import threading
    import time

    class Silent(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.flush()
            time.sleep(30)  # a model stuck before its first token

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Silent)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = bundled_settings.with_overrides(
        llm="openai",
        openai_base_url=f"http://127.0.0.1:{server.server_address[1]}/v1",
        llm_timeout=2,
        llm_max_retries=0,
    )
    start = time.monotonic()
    try:
        with pytest.raises(BackendError, match=r"timed out after 2 s.*RAG_LLM_TIMEOUT"):
            rag.ask("What are emergent abilities of large language models?", settings=settings)
    finally:
        server.shutdown()
    assert time.monotonic() - start < 20
