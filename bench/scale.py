"""Scale run: N synthetic one-chunk papers (default 1,000,000) into a real `chroma run` server, then search.

`--minilm int8|packaged` embeds with the real model instead (for 100k-chunk before/after runs).

SYNTHETIC VECTORS: embedding a million chunks with the real model takes hours on 2 cores, so this
run embeds with `HashEmbedder` (a feature-hashed bag of words, randomly projected to 384 dims and
L2-normalised: texts that share words get similar vectors). Everything else is the real thing:
`rag.Library.ingest` (parsing, chunking, the lookup of existing papers, paper and chunk records),
writes into the Chroma server over HTTP, BM25 (a segment per ingest, merges), and hybrid `Library.search`.

The papers are streamed into JSONL files of `--batch-papers` papers each, ingested one file per
`ingest` call (progress per call, bounded input). Then: hybrid search latency, Python and server
memory (RSS), the server's data folder, listing the papers (count, a page, stats, all), a small
incremental ingest (`--incremental` new papers: the "rebuild after a small ingest" number) and
one full BM25 rebuild from Chroma, timed on its own.

Where the time goes: a few functions of `rag` (and Chroma's `Collection.get/upsert/query`) are
wrapped at run time by timers (see TIMED); nothing in `rag/` is changed, and a name `rag` no
longer has is reported as not timed.

    python bench/scale.py                      # 1M chunks, own `chroma run` server
    python bench/scale.py --chunks 20000 --embedded --json out.json
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file (python bench/x.py): make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--chunks", type=int, default=1_000_000, help="synthetic one-chunk papers to ingest")
mode = parser.add_mutually_exclusive_group()
mode.add_argument("--server", dest="server", action="store_true", default=True, help="own `chroma run` (default)")
mode.add_argument("--embedded", dest="server", action="store_false", help="the embedded Chroma folder instead")
parser.add_argument("--batch-papers", type=int, default=100_000, help="papers per JSONL file and `ingest` call")
parser.add_argument("--queries", type=int, default=60, help="timed hybrid searches (after 5 warm-up ones)")
parser.add_argument("--incremental", type=int, default=100, help="new papers in the small ingest after the big one")
parser.add_argument("--keep", action="store_true", help="keep the server data, index folder and inputs")
parser.add_argument(
    "--minilm",
    choices=["int8", "packaged"],
    help="embed with the real MiniLM (int8 graph, or the packaged one as before) instead of synthetic vectors",
)
parser.add_argument("--json", type=Path, metavar="PATH", help="write every number to this JSON file")
args = parser.parse_args()
if args.chunks < 1 or args.batch_papers < 1 or args.queries < 1 or args.incremental < 0:
    parser.error("--chunks, --batch-papers and --queries must be positive; --incremental not negative")

import functools
import importlib
import inspect
import json
import os
import shutil
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import rag
from bench.common import (
    folder_mb,
    own_memory_mb,
    percentiles,
    process_cpu_s,
    process_memory_mb,
    start_chroma_server,
)
from bench.synthetic import VOCAB, HashEmbedder, queries, write_papers
from rag.config import Settings
from rag.index.minilm import MiniLMEmbedder
from rag.local.model import free_port, stop_process


class TimedMiniLM(MiniLMEmbedder):
    """The real offline embedder (for `--minilm`), timing its own work like HashEmbedder."""

    def __init__(self, int8: bool) -> None:
        super().__init__(int8=int8)
        self.seconds = 0.0

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]] | None
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        start = time.perf_counter()
        try:
            return super().embed_with_spans(texts, spans)
        finally:
            self.seconds += time.perf_counter() - start


# --- timers wrapped around rag's functions --------------------------------------------

TIMED = {  # (module, class or "", function) -> label; a name rag no longer has is reported, not timed
    ("rag.ingest.pipeline", "", "load_corpus"): "parse inputs",
    ("rag.ingest.pipeline", "", "_existing"): "look up the input's papers",
    ("rag.ingest.pipeline", "", "chunk_paper"): "chunk",
    ("rag.ingest.pipeline", "", "embed_and_write"): "embed + write (pipelined)",
    ("rag.ingest.writer", "", "_prepare"): "  embed + records (main thread)",
    ("rag.ingest.writer", "", "_write"): "  chroma writes (writer thread)",
    ("rag.ingest.pipeline", "", "_finish"): "finish (digest, BM25)",
    ("rag.ingest.pipeline", "", "collection_digest"): "digest from every id (repair)",
    ("rag.index.paper_index", "PaperIndex", "update_bm25"): "BM25 update (new segment)",
    ("rag.index.paper_index", "PaperIndex", "_chunk_texts"): "BM25 merge: read chunk texts",
    ("rag.index.paper_index", "PaperIndex", "rebuild_bm25"): "BM25 full rebuild (read + build)",
    ("rag.index.bm25", "Segment", "build"): "BM25 segment build (tokenise, index)",
    ("rag.index.bm25", "BM25Index", "save"): "BM25 save",
    ("rag.index.bm25", "", "load"): "BM25 load",
    ("chromadb.api.models.Collection", "Collection", "upsert"): "chroma upsert",
    ("chromadb.api.models.Collection", "Collection", "get"): "chroma get",
    ("chromadb.api.models.Collection", "Collection", "query"): "chroma query",
}
WRITE_LABEL = "  chroma writes (writer thread)"


class Timers:
    """Seconds and calls per label (from any thread); `lap()` returns and resets them."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.missing: list[str] = []
        self._lock = threading.Lock()

    def wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*a: Any, **kw: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                with self._lock:
                    self.seconds[label] += time.perf_counter() - start
                    self.calls[label] += 1

        return timed

    def install(self) -> None:
        for (module, cls, name), label in TIMED.items():
            try:
                owner: Any = importlib.import_module(module)
                if cls:
                    owner = getattr(owner, cls)
                raw = inspect.getattr_static(owner, name)
                if isinstance(raw, classmethod | staticmethod):
                    setattr(owner, name, type(raw)(self.wrap(label, raw.__func__)))
                else:
                    setattr(owner, name, self.wrap(label, raw))
            except (ImportError, AttributeError):
                self.missing.append(f"{module}.{cls + '.' if cls else ''}{name}")

    def lap(self) -> dict[str, dict[str, float]]:
        with self._lock:
            out = {k: {"s": round(v, 3), "calls": self.calls[k]} for k, v in self.seconds.items()}
            self.seconds.clear()
            self.calls.clear()
        return out


def show_phases(phases: dict[str, dict[str, float]], indent: str = "    ") -> None:
    for label, v in sorted(phases.items(), key=lambda kv: -kv[1]["s"]):
        if v["s"] >= 0.05:
            print(f"{indent}{label:<36} {v['s']:>9.2f} s  ({v['calls']} calls)")


# --- the run ---------------------------------------------------------------------------


def bm25_facts(bm25: Any) -> dict[str, int]:
    """Rows, segments, deleted rows and vocabulary of a BM25 index (segmented or a single bm25s model)."""
    segments = getattr(bm25, "segments", None)
    models = [seg.model for seg in segments] if segments is not None else [getattr(bm25, "model", None)]
    vocab: set[str] = set()
    for model in models:
        vocab.update(getattr(model, "vocab_dict", None) or {})
    return {
        "chunks": len(bm25.chunk_ids),
        "segments": len(segments) if segments is not None else 1,
        "deleted": len(getattr(bm25, "deleted", ())),
        "vocabulary": len(vocab),
    }


def cpu_s() -> float:
    """CPU seconds (user + system) of this process so far."""
    t = os.times()
    return t.user + t.system


def main() -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    inputs, data = root / "inputs", root / "chroma-server-data"
    inputs.mkdir()
    results: dict[str, Any] = {
        "chunks_requested": args.chunks,
        "mode": "server" if args.server else "embedded",
        "batch_papers": args.batch_papers,
        "embedder": f"MiniLM ({args.minilm} graph)"
        if args.minilm
        else f"{HashEmbedder.model_id} (SYNTHETIC vectors: feature-hashed bag of words; not MiniLM)",
        "vocabulary_words": len(VOCAB),
        "folder": str(root),
    }
    timers = Timers()
    timers.install()
    proc = None
    try:
        if args.server:
            port = free_port()
            data.mkdir()
            proc = start_chroma_server(data, port, log_file=root / "chroma.log")
            settings = Settings(index_dir=root / "index", chroma_host="127.0.0.1", chroma_port=port, _env_file=None)  # type: ignore[call-arg]
            results["server"] = {"pid": proc.pid, "port": port, "data": str(data)}
            print(f"chroma run: pid {proc.pid}, 127.0.0.1:{port}, data in {data}", flush=True)
        else:
            settings = Settings(index_dir=root / "index", _env_file=None)  # type: ignore[call-arg]
            data = root / "index" / "chroma"
        embedder: HashEmbedder | TimedMiniLM = TimedMiniLM(args.minilm == "int8") if args.minilm else HashEmbedder()
        library = rag.Library(settings, embedder=embedder)
        print(
            f"{results['embedder']}; real ingest, Chroma writes, BM25 and hybrid search. "
            f"{args.chunks:,} papers in files of {args.batch_papers:,}, into {settings.index_location()}",
            flush=True,
        )
        if timers.missing:
            print(f"(not timed, no longer in rag: {', '.join(timers.missing)})")

        batches: list[dict[str, Any]] = []
        total_added, total_s, write_s, chroma_s = 0, 0.0, 0.0, 0.0
        for first in range(0, args.chunks, args.batch_papers):
            count = min(args.batch_papers, args.chunks - first)
            gen_start = time.perf_counter()
            path = write_papers(inputs / f"papers-{first:07d}.jsonl", first, count, seed=first)
            gen_s = time.perf_counter() - gen_start
            timers.lap()
            embed_before = embedder.seconds
            cpu_before = (cpu_s(), process_cpu_s(proc.pid) if proc else 0.0)
            start = time.perf_counter()
            report = library.ingest([path], progress=False)
            seconds = time.perf_counter() - start
            cpu = (cpu_s() - cpu_before[0], (process_cpu_s(proc.pid) - cpu_before[1]) if proc else None)
            phases = timers.lap()
            write = phases.get("embed + write (pipelined)", {}).get("s", 0.0)
            chroma_write = phases.get(WRITE_LABEL, {}).get("s", 0.0)
            embed = embedder.seconds - embed_before
            batch: dict[str, Any] = {
                "papers_before": first,
                "added": report.added,
                "chunks_after": report.chunks,
                "generate_s": round(gen_s, 2),
                "ingest_s": round(seconds, 2),
                "chunks_per_s": round(report.added / seconds, 1),
                "write_s": round(write, 2),
                "write_chunks_per_s": round(report.added / write, 1) if write else None,
                "chroma_write_s": round(chroma_write, 2),
                "chroma_write_chunks_per_s": round(report.added / chroma_write, 1) if chroma_write else None,
                "embed_s": round(embed, 2),
                "python_cpu_s": round(cpu[0], 1),
                "server_cpu_s": round(cpu[1], 1) if cpu[1] is not None else None,
                "phases": phases,
                "python_memory": own_memory_mb(),
                "server_memory": process_memory_mb(proc.pid) if proc else None,
            }
            batches.append(batch)
            total_added += report.added
            total_s += seconds
            write_s += write
            chroma_s += chroma_write
            print(
                f"batch {len(batches)}: +{report.added:,} chunks -> {report.chunks:,} in {seconds:.1f} s "
                f"({batch['chunks_per_s']:,.0f} chunks/s end to end; embed + write {write:.1f} s, "
                f"of it Chroma upserts {chroma_write:.1f} s = {batch['chroma_write_chunks_per_s'] or 0:,.0f} chunks/s "
                f"and hashing {embed:.1f} s); "
                f"python RSS {batch['python_memory']['rss_mb']:,.0f} MB"
                + (f", server RSS {batch['server_memory']['rss_mb']:,.0f} MB" if proc else "")
                + f"; CPU s: python {cpu[0]:.0f}"
                + (f", server {cpu[1]:.0f}" if cpu[1] is not None else ""),
                flush=True,
            )
            show_phases(phases)
            if not args.keep:
                path.unlink()
        results["batches"] = batches
        results["ingest"] = {
            "chunks": total_added,
            "seconds": round(total_s, 1),
            "chunks_per_s": round(total_added / total_s, 1),
            "write_seconds": round(write_s, 1),
            "write_chunks_per_s": round(total_added / write_s, 1) if write_s else None,
            "chroma_write_seconds": round(chroma_s, 1),
            "chroma_write_chunks_per_s": round(total_added / chroma_s, 1) if chroma_s else None,
        }

        # Chroma facts: batch limit, count, the cost of offset paging (first page vs last page).
        opened = library.index.open()
        assert opened is not None
        from rag.index.store import PAGE

        count = opened.chunks.count()
        page_s = {}
        for label, offset in (("first", 0), ("last", max(0, count - PAGE))):
            t = time.perf_counter()
            opened.chunks.get(include=["metadatas"], limit=PAGE, offset=offset)
            page_s[label] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        opened.chunks.get(ids=[f"missing-{i}" for i in range(50)], include=["metadatas"])
        page_s["by_50_ids"] = round(time.perf_counter() - t, 3)
        results["chroma"] = {
            "max_batch_size": library.index.client.get_max_batch_size(),
            "count": count,
            "page_size": PAGE,
            "page_get_s": page_s,
            "chromadb_version": __import__("chromadb").__version__,
        }
        timers.lap()

        # Hybrid search latency (after warm-up), then memory.
        qs = list(queries(args.queries + 5))
        t = time.perf_counter()
        library.search(qs[0], k=5)
        first_search_s = time.perf_counter() - t
        for q in qs[1:5]:
            library.search(q, k=5)
        samples = []
        for q in qs[5:]:
            t = time.perf_counter()
            library.search(q, k=5)
            samples.append(time.perf_counter() - t)
        p50, p95 = percentiles(samples)
        search_phases = timers.lap()
        results["search"] = {
            "queries": len(samples),
            "p50_ms": round(p50, 1),
            "p95_ms": round(p95, 1),
            "max_ms": round(max(samples) * 1000, 1),
            "first_ms": round(first_search_s * 1000, 1),
            "phases": search_phases,
            "bm25": bm25_facts(library.index.bm25()),
        }
        results["python_memory_after_search"] = own_memory_mb()
        if proc:
            results["server_memory_after_search"] = process_memory_mb(proc.pid)

        # Listing the library: a count and one page (what the UI table shows), stats, and every paper.
        listing: dict[str, Any] = {}
        calls: list[tuple[str, Callable[[], int]]] = [
            ("count", lambda: library.count()),
            ("last_page_of_50", lambda: len(library.papers(offset=max(0, args.chunks - 50), limit=50))),
            ("stats", lambda: library.stats().papers),
            ("all_papers", lambda: len(library.papers())),
        ]
        for label, call in calls:
            t = time.perf_counter()
            try:
                got = call()
            except (AttributeError, TypeError) as exc:  # an older Library without it
                listing[label] = {"error": str(exc)}
                continue
            listing[label] = {"result": got, "seconds": round(time.perf_counter() - t, 3)}
        results["listing"] = listing
        timers.lap()

        # A small incremental ingest after the big one.
        if args.incremental:
            path = write_papers(inputs / "incremental.jsonl", args.chunks, args.incremental, seed=-1)
            start = time.perf_counter()
            report = library.ingest([path], progress=False)
            seconds = time.perf_counter() - start
            phases = timers.lap()
            t = time.perf_counter()
            library.search(qs[1], k=5)
            results["incremental"] = {
                "papers": args.incremental,
                "added": report.added,
                "chunks_after": report.chunks,
                "seconds": round(seconds, 2),
                "phases": phases,
                "next_search_ms": round((time.perf_counter() - t) * 1000, 1),
                "bm25": bm25_facts(library.index.bm25()),
            }
            timers.lap()

        # One BM25 rebuild on its own, and its folder.
        start = time.perf_counter()
        bm25 = library.index.rebuild_bm25()
        rebuild_s = time.perf_counter() - start
        results["bm25"] = {
            "rebuild_s": round(rebuild_s, 2),
            "phases": timers.lap(),
            **bm25_facts(bm25),
            "folder_mb": folder_mb(library.index.bm25_folder),
        }
        results["python_memory_end"] = own_memory_mb()
        if proc:
            results["server_memory_end"] = process_memory_mb(proc.pid)
        results["data_folder_mb"] = folder_mb(data)
        results["data_folder_parts_mb"] = {  # chroma.sqlite3 (records, metadata, full-text index, log) vs HNSW folders
            p.name: folder_mb(p) if p.is_dir() else round(p.stat().st_size / 1e6, 1) for p in sorted(data.iterdir())
        }
        library.close()
    finally:
        if proc is not None:
            stop_process(proc)
        if args.keep:
            print(f"kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return results


def summary(r: dict[str, Any]) -> None:
    ing, s, b, pg = r["ingest"], r["search"], r["bm25"], r["chroma"]["page_get_s"]
    py, end = r["python_memory_after_search"], r["python_memory_end"]
    top_parts = sorted(r["data_folder_parts_mb"].items(), key=lambda kv: -kv[1])[:3]
    sb = s["bm25"]
    rows = [
        ("mode", f"{r['mode']} (chromadb {r['chroma']['chromadb_version']})"),
        ("chunks", f"{r['chroma']['count']:,} (files of {r['batch_papers']:,} papers)"),
        ("ingest", f"{ing['seconds']:,.1f} s = {ing['chunks_per_s']:,.0f} chunks/s end to end"),
        ("  per batch", ", ".join(f"{x['chunks_per_s']:,.0f}" for x in r["batches"]) + " chunks/s"),
        ("  embed + write", f"{ing['write_seconds']:,.1f} s = {ing['write_chunks_per_s'] or 0:,.0f} chunks/s"),
        (
            "  chroma upserts",
            f"{ing['chroma_write_seconds']:,.1f} s = {ing['chroma_write_chunks_per_s'] or 0:,.0f} chunks/s "
            "(each chunk also writes its paper record)",
        ),
        ("hybrid search", f"p50 {s['p50_ms']:.1f} ms, p95 {s['p95_ms']:.1f} ms, max {s['max_ms']:.1f} ms"),
        ("  first search", f"{s['first_ms']:,.0f} ms; BM25 {sb['segments']} segments, {sb['deleted']} deleted rows"),
    ]
    if "incremental" in r:
        inc = r["incremental"]
        rows.append(("small ingest", f"{inc['added']} new chunks in {inc['seconds']:.1f} s (BM25 included)"))
    rows += [
        ("BM25 full rebuild", f"{b['rebuild_s']:.1f} s over {b['chunks']:,} chunks, {b['vocabulary']:,} terms"),
        ("BM25 folder", f"{b['folder_mb']:,.1f} MB"),
    ]
    for label, got in r["listing"].items():
        value = f"{got['seconds']:.2f} s" if "seconds" in got else got["error"]
        rows.append((f"papers: {label}", value))
    rows.append(
        (
            "python RSS",
            f"{py['rss_mb']:,.0f} MB after search (peak {py['peak_rss_mb']:,.0f}; at end {end['peak_rss_mb']:,.0f})",
        )
    )
    if "server_memory_end" in r:
        srv = r["server_memory_end"]
        rows.append(("server RSS", f"{srv['rss_mb']:,.0f} MB at end (peak {srv['peak_rss_mb']:,.0f})"))
    rows += [
        ("chroma data folder", f"{r['data_folder_mb']:,.1f} MB"),
        ("  biggest parts", ", ".join(f"{k} {v:,.1f}" for k, v in top_parts) + " MB"),
        ("chroma batch limit", f"{r['chroma']['max_batch_size']:,} records per call (get_max_batch_size)"),
        (
            f"get {r['chroma']['page_size']:,} records",
            f"offset 0: {pg['first'] * 1000:.0f} ms, last page: {pg['last'] * 1000:.0f} ms",
        ),
    ]
    print(f"\n=== scale run ({results['embedder']}; real ingest, Chroma, BM25, hybrid search) ===")
    for label, value in rows:
        print(f"{label:<24} {value}")


if __name__ == "__main__":
    results = main()
    summary(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")
