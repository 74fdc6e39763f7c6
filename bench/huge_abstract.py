"""One huge abstract: ingest time vs. embedding its chunks alone, and index size vs. text size.

Each abstract is stored once (per-paper record), so ingest should cost about its chunks' embedding time
and the index should grow linearly with the text. Sizes are in characters of abstract text.
Usage: python bench/huge_abstract.py [--sizes 100000 500000 1000000]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import random
import tempfile
import time

import rag
from bench.common import temp_settings
from rag.index.minilm import MiniLMEmbedder
from rag.ingest.chunking import chunk_paper
from rag.text import sentence_spans
from rag.types import Paper

parser = argparse.ArgumentParser()
parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 500_000, 1_000_000])
args = parser.parse_args()

vocabulary = sorted({w.strip(".,;:()") for p in rag.load_corpus() for w in p.abstract.split() if w.isalpha()})
rng = random.Random(0)


def abstract_of(size: int) -> str:
    words: list[str] = []
    length = 0
    while length < size:
        sentence = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(8, 30)))
        words.append(sentence.capitalize() + ".")
        length += len(words[-1]) + 1
    return " ".join(words)[:size]


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


print(f"{'chars':>9} {'chunks':>7} {'embed s':>8} {'ingest s':>9} {'ratio':>6} {'index MB':>9} {'bytes/char':>10}")
for size in args.sizes:
    settings = temp_settings("bench-huge-", max_abstract_chars=size + 10)
    text = abstract_of(size)
    title = f"A Synthetic Abstract Of {size} Characters"
    folder = Path(tempfile.mkdtemp(prefix="bench-huge-input-"))
    path = folder / "huge.jsonl"
    path.write_text(json.dumps({"title": title, "abstract": text}) + "\n")
    chunks = chunk_paper(Paper("p", title, text), settings.chunk_tokens, settings.chunk_overlap)
    embedder = MiniLMEmbedder(settings.embedding_batch_size, settings.embedding_threads)
    embedder.embed_query("warm up")
    start = time.perf_counter()
    embedder.embed_with_spans([c.text for c in chunks], [sentence_spans(c.text, len(title) + 1) for c in chunks])
    embed_s = time.perf_counter() - start
    start = time.perf_counter()
    report = rag.ingest([path], settings=settings, progress=False)
    ingest_s = time.perf_counter() - start
    size_b = folder_bytes(settings.index_dir)
    print(
        f"{size:>9} {report.chunks:>7} {embed_s:>8.1f} {ingest_s:>9.1f} {ingest_s / embed_s:>6.2f} "
        f"{size_b / 1e6:>9.1f} {size_b / size:>10.1f}"
    )
