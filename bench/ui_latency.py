"""Time from pressing Enter to the first streamed text and to the full answer, in headless Chromium.

Starts `rag ui` on the bundled index (offline default) on a free port, asks several questions, prints medians.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file (python bench/x.py): make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse

argparse.ArgumentParser(description=__doc__).parse_args()  # --help, and no stray arguments

import statistics

from playwright.sync_api import sync_playwright
from rag.eval.datasets import retrieval_questions

import rag
from bench.common import temp_settings
from tests.e2e.browser import ask, open_chat
from tests.helpers import free_port, serving

QUESTIONS = retrieval_questions()

settings = temp_settings("bench-ui-")
rag.ingest(settings=settings, progress=False)
port = free_port()
url = f"http://127.0.0.1:{port}/"
with serving(["ui", "--port", str(port)], url, {"RAG_INDEX_DIR": str(settings.index_dir)}, 120), sync_playwright() as p:
    browser, page = open_chat(p, url)
    ask(page, "warm up: what is a lottery ticket?")
    firsts, fulls = [], []
    for question, _ in QUESTIONS[:12]:
        first, full = ask(page, question)
        firsts.append(first)
        fulls.append(full)
    browser.close()
print(f"Enter → first streamed text: median {statistics.median(firsts) * 1000:.0f} ms (max {max(firsts) * 1000:.0f})")
print(
    f"Enter → full answer with sources: median {statistics.median(fulls) * 1000:.0f} ms (max {max(fulls) * 1000:.0f})"
)
