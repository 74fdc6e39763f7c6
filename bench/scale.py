"""Scale run: ingest N synthetic one-chunk papers, then query latency (default N = 100,000).

Synthetic abstracts are short (about 30 word-pieces) so that the run takes minutes, not hours, on
2 cores; the embedding cost per chunk grows with length (see ingest_throughput.py for real chunks).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file (python bench/x.py): make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import random
import tempfile
import time

import rag
from bench.common import percentiles, temp_settings

parser = argparse.ArgumentParser()
parser.add_argument("--chunks", type=int, default=100_000)
args = parser.parse_args()

rng = random.Random(0)
vocab = [
    "network",
    "neural",
    "learning",
    "gradient",
    "model",
    "transformer",
    "attention",
    "sparse",
    "kernel",
    "random",
    "feature",
    "scaling",
    "law",
    "width",
    "depth",
    "approximation",
    "universal",
    "lottery",
    "ticket",
    "graph",
    "diffusion",
    "prior",
    "bayesian",
    "optimisation",
    "loss",
    "landscape",
    "convex",
    "robust",
    "adversarial",
    "memory",
    "prompt",
    "token",
    "language",
    "vision",
    "operator",
    "equivariant",
]
path = Path(tempfile.mkdtemp()) / "synthetic.jsonl"
with path.open("w") as f:
    for i in range(args.chunks):
        title = f"Synthetic paper {i} on " + " ".join(rng.choices(vocab, k=3))
        abstract = " ".join(rng.choices(vocab, k=18)) + f" identifier {i}."
        f.write(json.dumps({"title": title, "abstract": abstract}) + "\n")

settings = temp_settings("bench-scale-")
start = time.perf_counter()
report = rag.ingest([path], settings=settings, progress=True)
ingest_s = time.perf_counter() - start
queries = [" ".join(rng.choices(vocab, k=6)) for _ in range(60)]
rag.search(queries[0], settings=settings)  # load caches
samples = []
for q in queries:
    t = time.perf_counter()
    rag.search(q, k=5, settings=settings)
    samples.append(time.perf_counter() - t)
p50, p95 = percentiles(samples)
print(f"{report.chunks} chunks ingested in {ingest_s:.0f} s ({report.chunks / ingest_s:.0f} chunks/s)")
print(f"hybrid search at {report.chunks} chunks: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
