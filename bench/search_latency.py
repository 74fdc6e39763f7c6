"""Warm search latency per retriever (target p50 <= 30 ms) and ranking quality of dense, BM25 and fused."""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file (python bench/x.py): make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse

argparse.ArgumentParser(description=__doc__).parse_args()  # --help, and no stray arguments

import time

from rag.eval.datasets import retrieval_questions

import rag
from bench.common import percentiles, temp_settings

QUESTIONS = retrieval_questions()

settings = temp_settings("bench-search-")
rag.ingest(settings=settings, progress=False)
for retriever in ("dense", "bm25", "hybrid"):
    rag.search("warm up", retriever=retriever, settings=settings)  # type: ignore[arg-type]
    samples, hit1, hit3 = [], 0, 0
    for _ in range(3):
        for question, _ in QUESTIONS:
            start = time.perf_counter()
            hits = rag.search(question, k=5, retriever=retriever, settings=settings)  # type: ignore[arg-type]
            samples.append(time.perf_counter() - start)
    for question, title in QUESTIONS:
        titles = [h.title for h in rag.search(question, k=3, retriever=retriever, settings=settings)]  # type: ignore[arg-type]
        hit1 += titles[:1] == [title]
        hit3 += title in titles
    p50, p95 = percentiles(samples)
    n = len(QUESTIONS)
    quality = f"hit@1 {hit1 / n:.2f}, hit@3 {hit3 / n:.2f} ({n} questions)"
    print(f"{retriever:>6}: p50 {p50:.1f} ms, p95 {p95:.1f} ms; {quality}")
