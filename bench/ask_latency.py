"""ask() latency per backend (target offline p50 <= 150 ms warm) and the share of questions citing the expected paper.

The local-model run needs the [local] extra; it starts `rag local-model` on a free port and stops it after.
Usage: python bench/ask_latency.py [--local] [--limit N]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file (python bench/x.py): make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import time

from rag.eval.datasets import retrieval_questions

import rag
from bench.common import percentiles, temp_settings
from rag.local.server import running_local_model

QUESTIONS = retrieval_questions()

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
    with running_local_model() as server:
        local = settings.with_overrides(openai_base_url=server.url, chat_model="smollm2", llm_timeout=600)
        run(local, "local SmolLM2-135M via llama.cpp", QUESTIONS[: args.limit])
