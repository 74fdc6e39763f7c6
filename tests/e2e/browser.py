"""Drive the chat in headless Debian Chromium (shared by the browser tests and bench/ui_latency.py)."""

from __future__ import annotations

import contextlib
import re
import shutil
import time
from collections.abc import Iterator
from typing import Any

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
ANSWERS_JS = "() => (document.querySelector('#chat').innerText.match(/answered by/g) || []).length"


@contextlib.contextmanager
def chat_page(url: str) -> Iterator[Any]:
    """A page with the app at `url` open, in its own browser (closed afterwards)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser, page = open_chat(p, url)
        try:
            yield page
        finally:
            browser.close()


def open_chat(playwright: Any, url: str) -> tuple[Any, Any]:
    """(browser, page) with the app mounted; page.dialogs collects any alert() the page raises."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs
    page.goto(url)
    page.wait_for_selector("#chat", timeout=60_000)
    page.wait_for_selector("#question textarea", timeout=60_000)
    return browser, page


def ask(page: Any, question: str) -> tuple[float, float]:
    """Type a question, press Enter; seconds to the first streamed text and to the finished answer."""
    done_before = page.evaluate(ANSWERS_JS)
    box = page.locator("#question textarea")
    box.fill(question)
    start = time.perf_counter()
    box.press("Enter")
    # Compare letters and digits only: the page renders quotes and dashes typographically.
    page.wait_for_function(
        "q => { const t = document.querySelector('#chat').innerText.replace(/[^A-Za-z0-9]/g, '');"
        " const i = t.lastIndexOf(q); return i >= 0 && t.length > i + q.length; }",
        arg=re.sub(r"[^A-Za-z0-9]", "", question),
        timeout=60_000,
    )
    first = time.perf_counter() - start
    page.wait_for_function(f"n => ({ANSWERS_JS})() > n", arg=done_before, timeout=120_000)
    return first, time.perf_counter() - start
