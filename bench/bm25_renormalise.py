"""What renormalising BM25 lengths costs a query: an index whose short chunks came first and long ones later.

Segments keep their chunk lengths; when the average length of all rows has moved since a segment was built,
a query recovers each term frequency from its stored score and rescores it (`Segment.renormalised`). This builds
N chunks (default 200,000) with the bundled abstracts' word frequencies, the first half short and the second
half long, in 50,000-chunk segments as an ingest does, then times `BM25Index.search` on the same queries with
renormalising on and off, in one run, and checks that renormalised scores match one build of the same chunks.

    python bench/bm25_renormalise.py
    python bench/bm25_renormalise.py --chunks 20000 --segment-rows 5000 --queries 50
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

from bench.arxiv_ingest import _vocabulary
from bench.common import percentiles
from rag.index import bm25
from rag.index.store import ids_digest

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--chunks", type=int, default=200_000)
parser.add_argument("--queries", type=int, default=200)
parser.add_argument("--segment-rows", type=int, default=bm25.SEGMENT_ROWS, help="chunks per segment")
args = parser.parse_args()


def timed(index: bm25.BM25Index, queries: list[str]) -> tuple[float, float]:
    samples = []
    for query in queries:
        start = time.perf_counter()
        index.search(query, 20)
        samples.append(time.perf_counter() - start)
    return percentiles(samples)


def main() -> None:
    rng = random.Random(0)
    words, cum, lengths = _vocabulary()
    half = args.chunks // 2
    texts = [
        " ".join(rng.choices(words, cum_weights=cum, k=max(rng.choice(lengths) // (4 if i < half else 1), 3)))
        for i in range(args.chunks)
    ]
    ids = [f"c{i}" for i in range(args.chunks)]
    queries = [" ".join(rng.choices(words, cum_weights=cum, k=6)) for _ in range(args.queries)]
    with tempfile.TemporaryDirectory(prefix="bench-bm25-") as folder:
        new = bm25.SegmentBuilder(bm25.BM25Index(ids_digest([]), []), Path(folder) / "s", args.segment_rows)
        for cid, text in zip(ids, texts, strict=True):
            new.add(cid, text)
        segments = new.finish()
        index = bm25.BM25Index("d", segments, avgdl=segments[0].normalised_by)
        one = bm25.BM25Index("d", [bm25.Segment.build(ids, texts)])
        agree = []
        for query in queries[:20]:
            got, want = dict(index.search(query, 50)), dict(one.search(query, 50))
            agree.append(len(got.keys() & want.keys()) / max(len(want), 1))
        on = timed(index, queries)
        renormalise, bm25.RENORMALISE = bm25.RENORMALISE, float("inf")
        off = timed(index, queries)
        off_agree = []
        for query in queries[:20]:
            got, want = dict(index.search(query, 50)), dict(one.search(query, 50))
            off_agree.append(len(got.keys() & want.keys()) / max(len(want), 1))
        bm25.RENORMALISE = renormalise
        one_build = timed(one, queries)
    result = {
        "chunks": args.chunks,
        "segments": [s.size for s in segments],
        "avg_length_first_segment": round(segments[0].normalised_by, 1),
        "avg_length_all": round(index.mean_length, 1),
        "p50_p95_ms_renormalised": [round(x, 2) for x in on],
        "p50_p95_ms_as_built": [round(x, 2) for x in off],
        "p50_p95_ms_one_build": [round(x, 2) for x in one_build],
        "top50_shared_with_one_build_renormalised": round(sum(agree) / len(agree), 3),
        "top50_shared_with_one_build_as_built": round(sum(off_agree) / len(off_agree), 3),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
