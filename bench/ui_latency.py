"""Time from pressing Enter to the first streamed text and to the full answer, in headless Chromium.

Starts `rag ui` on the bundled index (offline default) on a free port, asks several questions, prints medians.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

import rag
from bench.common import temp_settings
from tests.e2e.browser import ask, open_chat
from tests.helpers import free_port, http_ok, stop, wait_until
from tests.test_retrieval import QUESTIONS

settings = temp_settings("bench-ui-")
rag.ingest(settings=settings, progress=False)
port = free_port()
root = Path(__file__).resolve().parents[1]
proc = subprocess.Popen(
    [sys.executable, "-m", "rag.cli", "ui", "--port", str(port)],
    cwd=root,
    env={**os.environ, "RAG_INDEX_DIR": str(settings.index_dir)},
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
try:
    wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/"), timeout=120, proc=proc)
    with sync_playwright() as p:
        browser, page = open_chat(p, f"http://127.0.0.1:{port}/")
        ask(page, "warm up: what is a lottery ticket?")
        firsts, fulls = [], []
        for question, _ in QUESTIONS[:12]:
            first, full = ask(page, question)
            firsts.append(first)
            fulls.append(full)
        browser.close()
finally:
    stop(proc)
print(f"Enter → first streamed text: median {statistics.median(firsts) * 1000:.0f} ms (max {max(firsts) * 1000:.0f})")
print(
    f"Enter → full answer with sources: median {statistics.median(fulls) * 1000:.0f} ms (max {max(fulls) * 1000:.0f})"
)
