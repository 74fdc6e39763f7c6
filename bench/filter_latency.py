"""What a filter adds to `search()`: N synthetic papers (default 100,000) with years, authors and categories in an
embedded index, then hybrid, dense and BM25 searches without a filter and with each of a few filters.

SYNTHETIC VECTORS (bench/synthetic.py's HashEmbedder), as in bench/scale.py: the index, the admitted chunks read
through Chroma's `where`, the exact vector scan, the BM25 masks and `Library.search` are the real thing. For each
filter: the first search (which reads what the filter admits and keeps it) and the p50/p95 of the next ones,
against the same queries unfiltered, in one run.

    python bench/filter_latency.py                 # 100k papers
    python bench/filter_latency.py --papers 20000 --json out.json
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file (python bench/x.py): make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import shutil
import tempfile
import time
from typing import Any

import rag
from bench.common import percentiles
from bench.synthetic import CATEGORIES, SURNAMES, HashEmbedder, queries, write_papers
from rag.config import Settings

FILTERS: dict[str, rag.PaperFilter] = {
    "from 2020 (about 23% of papers)": rag.PaperFilter(year_from=2020),
    "2010-2012 (about 12%)": rag.PaperFilter(year_from=2010, year_to=2012),
    f"category {CATEGORIES[0]} (about 15%)": rag.PaperFilter(category=CATEGORIES[0]),
    f"author {SURNAMES[7]} (about 0.15%)": rag.PaperFilter(author=SURNAMES[7]),
    f"from 2015 and category {CATEGORIES[1]}": rag.PaperFilter(year_from=2015, category=CATEGORIES[1]),
}


def timed_searches(lib: rag.Library, qs: list[str], retriever: str, where: rag.PaperFilter | None) -> dict[str, Any]:
    start = time.perf_counter()
    lib.search(qs[0], k=5, retriever=retriever, where=where)  # the first: reads what the filter admits
    first = (time.perf_counter() - start) * 1000
    times = []
    for q in qs[1:]:
        start = time.perf_counter()
        hits = lib.search(q, k=5, retriever=retriever, where=where)
        times.append(time.perf_counter() - start)
        assert where is None or all(where.admits(p) for p in lib.papers([h.paper_id for h in hits]))
    p50, p95 = percentiles(times)
    return {"first_ms": round(first, 1), "p50": round(p50, 1), "p95": round(p95, 1)}


def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=40, help="timed searches per filter and retriever")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the numbers to this JSON file")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-filter-"))
    try:
        path = write_papers(root / "papers.jsonl", 0, args.papers, seed=0, metadata=True)
        settings = Settings(index_dir=root / "index", _env_file=None)  # type: ignore[call-arg]
        lib = rag.Library(settings, embedder=HashEmbedder())
        start = time.perf_counter()
        lib.ingest([path], include_bundled=False, progress=True)
        print(f"{args.papers:,} papers ingested in {time.perf_counter() - start:.0f} s", flush=True)
        qs = list(queries(args.queries + 1))
        results: dict[str, Any] = {"papers": args.papers, "queries": args.queries, "retrievers": {}}
        for retriever in ("hybrid", "dense", "bm25"):
            for q in qs[:3]:  # warm: BM25 loaded, Chroma's index in memory
                lib.search(q, k=5, retriever=retriever)
            rows = {"no filter": timed_searches(lib, qs, retriever, None)}
            for name, flt in FILTERS.items():
                rows[name] = timed_searches(lib, qs, retriever, flt)
            base = rows["no filter"]["p50"]
            print(f"\n{retriever}: search() ms over {args.queries} queries, {args.papers:,} papers")
            print(f"  {'filter':42} {'first':>8} {'p50':>7} {'p95':>7} {'added p50':>10}")
            for name, row in rows.items():
                added = row["p50"] - base
                row["added_p50_ms"] = round(added, 1)
                print(f"  {name:42} {row['first_ms']:8.1f} {row['p50']:7.1f} {row['p95']:7.1f} {added:10.1f}")
            results["retrievers"][retriever] = rows
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        return results
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
