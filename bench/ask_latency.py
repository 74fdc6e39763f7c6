"""ask() latency per backend (target offline p50 <= 150 ms warm) and the share of questions citing the expected paper.

The local-model run needs the [local] extra; it starts `rag local-model` on a free port and stops it after.
Usage: python bench/ask_latency.py [--local] [--limit N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import rag
from bench.common import percentiles, temp_settings
from tests.helpers import free_port, http_ok, stop, wait_until
from tests.test_retrieval import QUESTIONS

parser = argparse.ArgumentParser()
parser.add_argument("--local", action="store_true", help="also measure the bundled SmolLM2 through llama.cpp")
parser.add_argument("--limit", type=int, default=len(QUESTIONS))
args = parser.parse_args()


def run(settings: rag.Settings, label: str, questions: list[tuple[str, str]]) -> None:
    rag.ask("warm up: what is a lottery ticket?", settings=settings)
    samples, cited, abstained = [], 0, 0
    for question, title in questions:
        start = time.perf_counter()
        answer = rag.ask(question, settings=settings)
        samples.append(time.perf_counter() - start)
        cited += title in [c.title for c in answer.citations]
        abstained += answer.abstained
    p50, p95 = percentiles(samples)
    n = len(questions)
    print(f"{label}: p50 {p50:.0f} ms, p95 {p95:.0f} ms; expected paper cited {cited}/{n}, abstained {abstained}/{n}")


settings = temp_settings("bench-ask-")
rag.ingest(settings=settings, progress=False)
run(settings, "extractive (offline default)", QUESTIONS[: args.limit])
if args.local:
    port = free_port()
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "local-model", "--port", str(port)],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/v1/models"), timeout=180, proc=proc)
        local = settings.with_overrides(
            openai_base_url=f"http://127.0.0.1:{port}/v1", chat_model="smollm2", llm_timeout=600
        )
        run(local, "local SmolLM2-135M via llama.cpp", QUESTIONS[: args.limit])
    finally:
        stop(proc)
