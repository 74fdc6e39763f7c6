"""The chat in a real browser: `rag ui` in a subprocess, headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import rag
from rag.config import Settings
from tests.helpers import free_port, http_ok, stop, wait_until

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
XSS_TITLE = "Hostile Markup in Abstracts Considered Harmful"
XSS_ABSTRACT = (
    'We study abstracts that carry markup. <img src=x onerror="window.__xss=1"> <script>window.__xss=2</script> '
    "Our benchmark of hostile markup shows that escaping every abstract prevents script injection in chat UIs."
)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (scripts/test.sh installs it)")


@pytest.fixture(scope="module")
def ui_url(bundled_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    index_dir = tmp_path_factory.mktemp("ui") / "index"
    shutil.copytree(bundled_settings.index_dir, index_dir)
    extra = index_dir.parent / "hostile.jsonl"
    extra.write_text(json.dumps({"title": XSS_TITLE, "abstract": XSS_ABSTRACT}) + "\n")
    rag.ingest([extra], settings=Settings(index_dir=index_dir, _env_file=None), progress=False)  # type: ignore[call-arg]
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "ui", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "RAG_INDEX_DIR": str(index_dir)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/"), timeout=120, proc=proc)
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop(proc)


@pytest.fixture
def page(ui_url: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1200, "height": 1000})
        dialogs: list[str] = []
        pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        pg.goto(ui_url)
        pg.wait_for_selector("#chat", timeout=60_000)
        pg.wait_for_selector("#question textarea", timeout=60_000)
        pg.dialogs = dialogs  # type: ignore[attr-defined]
        yield pg
        browser.close()


ANSWERS_JS = "() => (document.querySelector('#chat').innerText.match(/answered by/g) || []).length"


def ask(page: object, question: str) -> tuple[float, float]:
    """Type a question, press Enter; seconds to the first streamed text and to the finished answer."""
    done_before = page.evaluate(ANSWERS_JS)  # type: ignore[attr-defined]
    box = page.locator("#question textarea")  # type: ignore[attr-defined]
    box.fill(question)
    start = time.perf_counter()
    box.press("Enter")
    page.wait_for_function(  # type: ignore[attr-defined]
        "q => { const t = document.querySelector('#chat').innerText; const i = t.lastIndexOf(q);"
        " return i >= 0 && t.slice(i + q.length).replace(/[\\s…▍]/g, '').length > 0; }",
        arg=question,
        timeout=60_000,
    )
    first = time.perf_counter() - start
    page.wait_for_function(f"n => ({ANSWERS_JS})() > n", arg=done_before, timeout=120_000)  # type: ignore[attr-defined]
    return first, time.perf_counter() - start


def test_question_follow_up_and_screenshot(page: object) -> None:
    first, full = ask(page, "How narrow can a ReLU network be on a compact domain and still approximate any function?")
    chat = page.locator("#chat")  # type: ignore[attr-defined]
    sources = chat.inner_text().split("Sources")[1]
    assert "Minimum width for universal approximation using ReLU networks on compact domain" in sources
    ask(page, "How does it compare with the leaky-ReLU result?")
    text = chat.inner_text()
    second = text.split("How does it compare with the leaky-ReLU result?")[1]
    assert "Minimum Width of Leaky-ReLU Neural Networks for Uniform Universal Approximation" in second
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-chat.png"), full_page=True)  # type: ignore[attr-defined]
    (ARTIFACTS / "ui-timings.json").write_text(json.dumps({"first_text_s": first, "full_answer_s": full}))
    assert page.dialogs == []  # type: ignore[attr-defined]

    page.locator("#new-chat").click()  # type: ignore[attr-defined]
    page.wait_for_function("() => !document.querySelector('#chat').innerText.includes('answered by')")  # type: ignore[attr-defined]


def test_markup_in_an_abstract_renders_as_text(page: object) -> None:
    ask(page, "Which benchmark studies hostile markup in abstracts and script injection?")
    chat = page.locator("#chat")  # type: ignore[attr-defined]
    chat.locator("text=Full abstract").first.click()
    page.wait_for_function("() => document.querySelector('#chat').innerText.includes('onerror')")  # type: ignore[attr-defined]
    assert XSS_TITLE in chat.inner_text()
    assert '<img src=x onerror="window.__xss=1">' in chat.inner_text()  # shown literally
    assert page.evaluate("() => window.__xss === undefined")  # type: ignore[attr-defined]
    assert chat.locator("img[src='x']").count() == 0 and chat.locator("script").count() == 0
    assert page.dialogs == []  # type: ignore[attr-defined]


def test_gradio_client_gets_an_answer_with_sources(ui_url: str) -> None:
    from gradio_client import Client

    client = Client(ui_url, verbose=False)
    box, chat = client.predict("What are emergent abilities of large language models?", [], 5, api_name="/answer")
    assert box == ""
    answer_text = chat[1]["content"] if isinstance(chat[1]["content"], str) else json.dumps(chat[1]["content"])
    assert "Sources" in answer_text and "Emergent Abilities of Large Language Models" in answer_text
