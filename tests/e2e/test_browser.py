"""The chat in a real browser: `rag ui` in a subprocess, headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rag
from rag.config import Settings
from tests.e2e.browser import ANSWERS_JS, CHROMIUM, ask, chat_page
from tests.helpers import free_port, serving

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
XSS_TITLE = "Hostile Markup in Abstracts Considered Harmful"
XSS_ABSTRACT = (
    'We study abstracts that carry markup. <img src=x onerror="window.__xss=1"> <script>window.__xss=2</script> '
    "Our benchmark of hostile markup shows that escaping every abstract prevents script injection in chat UIs."
)

HOSTILE_TITLE = (
    '<div id="overlay" style="position:fixed;top:0;left:0;width:100vw;height:100vh;z-index:9999;background:red">'
    'Overlay</div><a id="phish" href="https://evil.example/phish">Verify your account</a>'
    '<img id="beacon" src="http://127.0.0.1:{port}/beacon.png"> Planting Markup in Paper Titles'
)
HOSTILE_ABSTRACT = (
    "We plant overlays, phishing links and beacon images in paper titles to test whether research chat interfaces "
    "render titles as text. Escaping every title keeps the page intact (code: https://example.com/title_markup)."
)

MATH_TITLE = "Square-Root Regret for Contextual Bandits with Budgets"
MATH_ABSTRACT = (
    "We study contextual bandits under a budget. Our algorithm achieves $O(\\sqrt{T \\log K})$ regret over $T$ "
    "rounds, and an experiment that costs $5 and $10 per run confirms the square-root regret of contextual bandits."
)

RELU = "Minimum width for universal approximation using ReLU networks on compact domain"
LEAKY = "Minimum Width of Leaky-ReLU Neural Networks for Uniform Universal Approximation"
RNN = "Minimal Width for Universal Property of Deep RNN"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (scripts/test.sh installs it)")


@pytest.fixture(scope="module")
def beacon() -> Iterator[tuple[int, list[str]]]:
    """A loopback HTTP server that records every request: a hostile image must never reach it."""
    import http.server
    import threading

    hits: list[str] = []

    class Record(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Record)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], hits
    server.shutdown()


@pytest.fixture(scope="module")
def ui_url(
    bundled_settings: Settings, tmp_path_factory: pytest.TempPathFactory, beacon: tuple[int, list[str]]
) -> Iterator[str]:
    index_dir = tmp_path_factory.mktemp("ui") / "index"
    shutil.copytree(bundled_settings.index_dir, index_dir)
    extra = index_dir.parent / "hostile.jsonl"
    extra.write_text(
        json.dumps({"title": XSS_TITLE, "abstract": XSS_ABSTRACT})
        + "\n"
        + json.dumps({"title": HOSTILE_TITLE.format(port=beacon[0]), "abstract": HOSTILE_ABSTRACT})
        + "\n"
        + json.dumps({"title": MATH_TITLE, "abstract": MATH_ABSTRACT})
        + "\n"
    )
    rag.ingest([extra], settings=Settings(index_dir=index_dir, _env_file=None), progress=False)  # type: ignore[call-arg]
    port = free_port()
    with serving(["ui", "--port", str(port)], f"http://127.0.0.1:{port}/", {"RAG_INDEX_DIR": str(index_dir)}, 120):
        yield f"http://127.0.0.1:{port}/"


@pytest.fixture
def page(ui_url: str) -> Iterator[Any]:
    with chat_page(ui_url) as pg:
        yield pg


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


def test_list_answer_and_relative_follow_up(page: Any) -> None:
    """The list example renders one bullet per paper; "other papers?" leaves out the previous turn's paper."""
    from rag.ui.app import EXAMPLES

    ask(page, EXAMPLES[0])
    last = page.locator("#chat .message-row").filter(has_text="papers in the collection fit").last
    items = last.locator("li")
    bullets = [items.nth(i).inner_text() for i in range(items.count())]
    assert len(bullets) >= 3, bullets
    assert any(b.startswith(RELU + ":") for b in bullets) and any(b.startswith(LEAKY + ":") for b in bullets)
    assert last.locator("li strong").first.inner_text() in (RELU, LEAKY, RNN)  # titles in bold

    page.locator("#new-chat").click()
    page.wait_for_function("() => !document.querySelector('#chat').innerText.includes('answered by')")
    ask(page, "What is the minimum width for universal approximation with ReLU networks on a compact domain?")
    ask(page, "Are there other papers on the minimum width needed for universal approximation?")
    second = page.locator("#chat").inner_text().split("Are there other papers on the minimum width")[1]
    assert "Leaving out the papers of the previous answer" in second and RELU in second
    sources = second.split("Sources")[1].split("answered by")[0]
    assert RELU not in sources and (LEAKY in sources or RNN in sources)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-relative-follow-up.png"), full_page=True)


def test_a_rewritten_follow_up_shows_what_was_searched_and_a_topic_switch_carries_nothing(page: Any) -> None:
    qzo = "Fine-tuning Quantized Neural Networks with Zeroth-order Optimization"
    ask(page, "How can quantized LLMs be fine-tuned without storing gradients?")
    assert qzo in page.locator("#chat").inner_text().split("Sources")[-1]
    assert not page.locator("#ask-standalone").is_visible()  # asked as typed: nothing to offer
    ask(page, "What memory does it save?")
    second = page.locator("#chat").inner_text().split("What memory does it save?\n")[-1]  # after the question
    assert f"Searched for: “What memory does it save? ({qzo})”" in second
    assert qzo in second.split("Sources")[1]
    page.wait_for_selector("#ask-standalone", state="visible")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-searched-for.png"), full_page=True)
    # One click asks it again as typed, without the conversation.
    before = page.evaluate(ANSWERS_JS)
    page.locator("#ask-standalone").click()
    page.wait_for_function(f"n => ({ANSWERS_JS})() > n", arg=before, timeout=120_000)
    third = page.locator("#chat").inner_text().split("What memory does it save?\n")[-1]
    assert "Searched for" not in third
    # A new topic mid-chat is searched as typed and answered from its own paper, not the previous one.
    ask(page, "Which object detector combines weighted residual connections and Mish activation?")
    fourth = page.locator("#chat").inner_text().split("weighted residual connections and Mish activation?")[-1]
    assert "Searched for" not in fourth
    assert "YOLOv4: Optimal Speed and Accuracy of Object Detection" in fourth and qzo not in fourth
    assert not page.locator("#ask-standalone").is_visible()


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


def test_latex_renders_in_answers_and_abstracts_and_a_dollar_amount_does_not(page: Any) -> None:
    ask(page, "What regret do contextual bandits with budgets achieve?")
    chat = page.locator("#chat")
    chat.locator("text=Full abstract").first.click()
    page.wait_for_function("() => document.querySelectorAll('#chat .katex').length >= 2")
    assert chat.locator(".katex-error").count() == 0
    rendered = page.evaluate(
        "() => [...document.querySelectorAll('#chat .katex-mathml annotation')].map(a => a.textContent)"
    )
    assert "O(\\sqrt{T \\log K})" in rendered and "T" in rendered
    text = chat.inner_text()
    # Money as written; math as math (the copy block under a source keeps the abstract's text as it is).
    prose = page.evaluate(
        "() => [...document.querySelectorAll('#chat .message')].filter(m => !m.querySelector('pre'))"
        ".map(m => m.innerText).join('\\n')"
    )
    assert "costs $5 and $10 per run" in text and "$O(" not in prose and "costs $5 and $10 per run" in prose
    # The bundled listings keep LaTeX without its dollars: a braced subscript renders too.
    ask(page, "What is the exact minimum width of leaky-ReLU networks for uniform universal approximation?")
    chat.locator(f"text=Full abstract: {LEAKY}").first.click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#chat .katex-mathml annotation')]"
        ".some(a => a.textContent.includes('w_{min}=max(d_x+1,d_y)'))"
    )
    assert chat.locator(".katex-error").count() == 0
    page.screenshot(path=str(ARTIFACTS / "ui-latex.png"), full_page=True)


def test_gradio_client_gets_an_answer_with_sources(ui_url: str) -> None:
    from gradio_client import Client

    client = Client(ui_url, verbose=False)
    box, chat = client.predict("What are emergent abilities of large language models?", [], 5, api_name="/answer")
    assert box == ""
    answer_text = chat[1]["content"] if isinstance(chat[1]["content"], str) else json.dumps(chat[1]["content"])
    assert "Sources" in answer_text and "Emergent Abilities of Large Language Models" in answer_text


def test_markup_in_a_title_renders_as_text_everywhere(page: Any, beacon: tuple[int, list[str]]) -> None:
    """An ingested title with an overlay, a phishing link and a beacon image: none of them may take effect."""
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    ask(page, "Which paper plants overlays, phishing links and beacon images in paper titles?")
    chat = page.locator("#chat")
    chat.locator("text=Full abstract").first.click()
    page.wait_for_function("() => document.querySelector('#chat').innerText.includes('title_markup')")
    page.wait_for_timeout(500)
    text = chat.inner_text()
    assert '<div id="overlay"' in text and "evil.example/phish" in text  # shown literally, as text
    assert page.locator("#overlay, #phish, #beacon").count() == 0
    assert page.locator("a[href*='evil.example']").count() == 0
    assert page.evaluate(
        "() => [...document.querySelectorAll('*')].every(e => getComputedStyle(e).position !== 'fixed'"
        " || e.getBoundingClientRect().width < window.innerWidth / 2)"
    ), "an element covers the page"
    assert beacon[1] == [] and not [u for u in requests if "beacon" in u or "evil.example" in u]
    hrefs = page.evaluate("() => [...document.querySelectorAll('#chat a[href]')].map(a => a.href)")
    assert "https://example.com/title_markup" in hrefs and not [h for h in hrefs if "%5C" in h]


QUESTION_AT_TOP_JS = """() => {
  const view = document.querySelector('#chat .bubble-wrap');
  const questions = view.querySelectorAll('.message-row.user-row');
  const top = questions[questions.length - 1].getBoundingClientRect().top - view.getBoundingClientRect().top;
  const onScreen = questions[questions.length - 1].getBoundingClientRect().top;
  return top >= -2 && top < 60 && view.scrollHeight > view.clientHeight && onScreen >= 0 && onScreen < innerHeight;
}"""


@pytest.mark.parametrize("width", [1280, 390])
def test_the_chat_without_rough_edges(page: Any, width: int) -> None:
    """Stop rests disabled, an empty question does nothing, an example asks at once and shows its whole text,
    each new answer is shown from its start, the header names what answers."""
    from rag.ui.app import EXAMPLES

    page.set_viewport_size({"width": width, "height": 900})
    assert "answers: offline quotes from the abstracts" in page.locator("#header").inner_text()
    assert page.locator("#stop").is_disabled() and page.locator("#cite").is_disabled()
    page.locator("#question textarea").press("Enter")
    page.locator("#ask").click()
    page.wait_for_timeout(1500)
    assert page.locator("#chat .message-row").count() == 0  # no empty bubble
    shown = page.evaluate(
        "() => [...document.querySelectorAll('#examples button')]"
        ".filter(b => b.scrollWidth <= b.clientWidth + 1).map(b => b.innerText.trim())"
    )
    assert shown == EXAMPLES  # each whole, none cut
    page.locator("#examples button", has_text=EXAMPLES[1]).click()  # asks at once
    page.wait_for_function(f"() => ({ANSWERS_JS})() === 1", timeout=120_000)
    assert EXAMPLES[1] in page.locator("#chat .message-row.user-row").last.inner_text()
    ask(page, "How can quantized LLMs be fine-tuned without storing gradients?")
    page.wait_for_timeout(500)
    assert page.evaluate(QUESTION_AT_TOP_JS), "the new answer is not shown from its start"
    assert page.locator("#stop").is_disabled() and page.locator("#cite").is_enabled()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"ui-chat-{width}px.png"))
