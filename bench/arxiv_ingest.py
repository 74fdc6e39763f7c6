"""A 1,000,000-record arXiv metadata file (the Kaggle snapshot's JSON Lines format) ingested with bounded memory.

    python bench/arxiv_ingest.py                     # 1M records, one file, into its own `chroma run` server
    python bench/arxiv_ingest.py --records 100000    # fewer
    python bench/arxiv_ingest.py --records 0 --sample 2000   # only the real-model part

The ingest runs in a child process, so its peak RSS (getrusage) is the ingest's alone; the Chroma server's
is sampled beside it. Records are written with the bundled abstracts' words and lengths, so they chunk like
real abstracts; one in a thousand repeats an earlier title (merged into one paper, as in a real snapshot
with cross-listed duplicates). Vectors are HashEmbedder's (bench/synthetic.py): MiniLM at a million chunks
takes hours on 2 cores. Everything else (parse, check, chunk, write, BM25 segments) is the real ingest.
`--sample N` also ingests N records with the real int8 MiniLM into an embedded index: papers/s end to end.
`--rebuild` times one full BM25 rebuild from the server afterwards (with `--records 0`, from an earlier run's folder).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file (python bench/x.py): make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import collections
import json
import random
import re
import resource
import subprocess
import tempfile
import time
from itertools import accumulate
from typing import Any

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--records", type=int, default=1_000_000, help="records in the file (default 1,000,000)")
parser.add_argument("--sample", type=int, default=2000, help="records ingested with the real MiniLM (0: none)")
parser.add_argument("--embedded", action="store_true", help="the large run into an embedded index, not a server")
parser.add_argument("--folder", type=Path, default=None, help="where the file and the index go (default: a temp)")
parser.add_argument(
    "--bm25-only",
    type=int,
    metavar="CHUNKS",
    help="only the BM25 segment stage on CHUNKS chunks of such records: peak RSS with segments written and mapped "
    "as they are built (what an ingest does) vs held in memory",
)
parser.add_argument(
    "--rebuild",
    action="store_true",
    help="then one full BM25 rebuild from Chroma (the repair after an interrupted ingest): time and peak RSS; with "
    "--records 0, on the server and index an earlier run left in --folder",
)
parser.add_argument("--bm25-child", nargs=2, metavar=("CHUNKS", "MODE"), help=argparse.SUPPRESS)
parser.add_argument("--rebuild-child", metavar="INDEX", help=argparse.SUPPRESS)
parser.add_argument("--child", nargs=2, metavar=("FILE", "INDEX"), help=argparse.SUPPRESS)
parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
parser.add_argument("--minilm", action="store_true", help=argparse.SUPPRESS)

_WORD = re.compile(r"[A-Za-z][A-Za-z\-']*[A-Za-z]|\d+(?:\.\d+)?")
_CATEGORIES = "cs.LG cs.CV cs.CL cs.AI cs.NE stat.ML math.OC cs.IR cs.RO eess.SP".split()


def _vocabulary() -> tuple[list[str], list[float], list[int]]:
    """The bundled abstracts' words with their frequencies (cumulative), and their lengths in words."""
    from rag.ingest.corpus import load_corpus

    counts: collections.Counter[str] = collections.Counter()
    lengths = []
    for paper in load_corpus():
        words = _WORD.findall(paper.abstract)
        counts.update(w.lower() for w in words)
        lengths.append(len(words))
    words, freq = zip(*counts.most_common(), strict=True)
    return list(words), list(accumulate(map(float, freq))), lengths


def write_arxiv_file(path: Path, records: int, seed: int = 0) -> dict[str, Any]:
    """`records` lines of arXiv's metadata snapshot (its fields, spacing and line breaks), streamed to `path`."""
    rng = random.Random(seed)
    words, cum, lengths = _vocabulary()
    titles: list[str] = []
    start = time.perf_counter()
    with path.open("w") as f:
        for i in range(records):
            if i >= 1000 and i % 1000 == 0:
                title = titles[i - 500]  # a cross-listed duplicate: the same paper, another record
            else:
                title = " ".join(rng.choices(words, cum_weights=cum, k=rng.randint(5, 12))).capitalize() + f" {i}"
            titles.append(title)
            body = rng.choices(words, cum_weights=cum, k=rng.choice(lengths))
            sentences = [" ".join(body[j : j + 18]).capitalize() + "." for j in range(0, len(body), 18)]
            abstract = "  " + "\n".join(" ".join(sentences)[k : k + 76] for k in range(0, len(" ".join(sentences)), 76))
            authors = [(f"Author{rng.randrange(50_000):05d}", f"{chr(65 + rng.randrange(26))}.") for _ in range(3)]
            arxiv_id = f"{21 + i // 400_000:02d}{1 + i // 40_000 % 10:02d}.{i % 40_000:05d}"
            row = {
                "id": arxiv_id,
                "submitter": f"{authors[0][1]} {authors[0][0]}",
                "authors": ", ".join(f"{first} {last}" for last, first in authors),
                "title": title if len(title) < 60 else title[:60] + "\n  " + title[60:],  # arXiv wraps titles
                "comments": f"{rng.randint(5, 40)} pages",
                "journal-ref": None,
                "doi": None,
                "report-no": None,
                "categories": " ".join(rng.sample(_CATEGORIES, 2)),
                "license": "http://arxiv.org/licenses/nonexclusive-distrib/1.0/",
                "abstract": abstract + "\n",
                "versions": [{"version": "v1", "created": f"Mon, {1 + i % 28} Jan 20{21 + i // 400_000} 10:00:00 GMT"}],
                "update_date": f"20{21 + i // 400_000}-01-{1 + i % 28:02d}",
                "authors_parsed": [[last, first, ""] for last, first in authors],
            }
            f.write(json.dumps(row) + "\n")
    return {
        "records": records,
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "write_s": round(time.perf_counter() - start, 1),
    }


def child(file: Path, index_dir: Path, port: int, minilm: bool) -> None:
    """The ingest itself; prints one JSON line with its time, its report and its peak RSS."""
    import rag
    from bench.synthetic import HashEmbedder
    from rag.config import Settings

    server = {"chroma_host": "127.0.0.1", "chroma_port": port} if port else {}
    settings = Settings(index_dir=index_dir, _env_file=None, **server)  # type: ignore[call-arg]
    library = rag.Library(settings) if minilm else rag.Library(settings, embedder=HashEmbedder())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    report = library.ingest([file], progress=True)
    seconds = time.perf_counter() - start
    bm25 = library.index.bm25()
    print(
        json.dumps(
            {
                "seconds": round(seconds, 1),
                "papers_per_s": round(report.papers / seconds, 1),
                "report": report.to_dict(),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "rss_before_ingest_mb": round(before, 1),
                "bm25_segments": [s.size for s in bm25.segments],
            }
        ),
        flush=True,
    )


def rebuild_child(index_dir: Path, port: int) -> None:
    """One full BM25 rebuild from the collection; prints one JSON line with its time and peak RSS."""
    import rag
    from bench.synthetic import HashEmbedder
    from rag.config import Settings

    settings = Settings(index_dir=index_dir, _env_file=None, chroma_host="127.0.0.1", chroma_port=port)  # type: ignore[call-arg]
    library = rag.Library(settings, embedder=HashEmbedder())
    start = time.perf_counter()
    bm25 = library.index.rebuild_bm25()
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "seconds": round(seconds, 1),
                "chunks": bm25.rows,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "bm25_segments": [s.size for s in bm25.segments],
            }
        ),
        flush=True,
    )


def run_child(
    file: Path | None, index_dir: Path, port: int, minilm: bool, log: Path, server_pid: int | None
) -> dict[str, Any]:
    """The ingest (or, without a file, a BM25 rebuild) in a child process, its and the server's memory sampled
    every 5 s (a line a minute)."""
    from bench.common import process_memory_mb

    me = [sys.executable, str(Path(__file__).resolve())]
    command = [*me, "--child", str(file), str(index_dir)] if file else [*me, "--rebuild-child", str(index_dir)]
    command += ["--port", str(port), *(["--minilm"] if minilm else [])]
    with log.open("w") as err:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err)
        samples: list[tuple[float, float, float]] = []  # (seconds, ingest RSS, server RSS)
        start = time.perf_counter()
        while proc.poll() is None:
            time.sleep(5)
            now = time.perf_counter() - start
            rss = process_memory_mb(proc.pid)["rss_mb"]
            server = process_memory_mb(server_pid)["rss_mb"] if server_pid else 0.0
            samples.append((now, rss, server))
            if len(samples) % 12 == 0:
                bars = log.read_text(errors="replace").split("\r")
                progress = bars[-2 if len(bars) > 1 else -1].strip()[:100]  # the last bar written whole
                print(f"  {now:7.0f} s  ingest RSS {rss:6.0f} MB  server RSS {server:6.0f} MB  {progress}", flush=True)
        out = proc.stdout.read().decode() if proc.stdout else ""
    if proc.returncode:
        raise SystemExit(f"the ingest failed (exit {proc.returncode}); its log: {log}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    if samples:
        result["ingest_rss_mb_by_quarter"] = [
            max(s[1] for s in samples[q * len(samples) // 4 : max((q + 1) * len(samples) // 4, 1)] or [samples[-1]])
            for q in range(4)
        ]
        result["server_peak_rss_mb"] = max(s[2] for s in samples)
    return result


def main() -> None:
    from bench.common import folder_mb, start_chroma_server
    from rag.local.model import free_port, stop_process

    root = args.folder or Path(tempfile.mkdtemp(prefix="bench-arxiv-"))
    root.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"folder": str(root)}
    if args.records:
        file = root / f"arxiv-{args.records}.jsonl"
        if file.exists():  # a file this script wrote before (it is deleted after a finished run)
            results["file"] = {"records": args.records, "file_mb": round(file.stat().st_size / 1e6, 1), "reused": True}
        else:
            results["file"] = write_arxiv_file(file, args.records)
        print(f"{file}: {results['file']}", flush=True)
        proc, port = None, 0
        try:
            if not args.embedded:
                port = free_port()
                (root / "chroma-server").mkdir(exist_ok=True)
                proc = start_chroma_server(root / "chroma-server", port, log_file=root / "chroma.log")
            print(f"ingesting into {'a chroma run server' if proc else 'an embedded index'} (synthetic vectors)")
            large = run_child(file, root / "index", port, False, root / "ingest.log", proc.pid if proc else None)
            large["data_on_disk_mb"] = folder_mb(root / ("chroma-server" if proc else "index"))
            results["large"] = large
            if args.rebuild and proc is not None:
                results["rebuild"] = run_child(None, root / "index", port, False, root / "rebuild.log", proc.pid)
        finally:
            if proc is not None:
                stop_process(proc)
        file.unlink()
    elif args.rebuild:  # on what an earlier run left in --folder
        if not (root / "chroma-server").is_dir():
            raise SystemExit(f"--records 0 --rebuild needs an earlier run's chroma-server and index in {root}")
        port = free_port()
        proc = start_chroma_server(root / "chroma-server", port, log_file=root / "chroma.log")
        try:
            print("rebuilding BM25 from the chroma run server", flush=True)
            results["rebuild"] = run_child(None, root / "index", port, False, root / "rebuild.log", proc.pid)
        finally:
            stop_process(proc)
    if args.sample:
        file = root / f"arxiv-sample-{args.sample}.jsonl"
        write_arxiv_file(file, args.sample, seed=1)
        print(f"ingesting {args.sample:,} records with the int8 MiniLM into an embedded index", flush=True)
        results["sample_minilm"] = run_child(file, root / "index-minilm", 0, True, root / "sample.log", None)
    print(json.dumps(results, indent=2))
    if "large" in results:
        r = results["large"]
        print(
            f"\n{args.records:,} arXiv records ({results['file']['file_mb']:,} MB): {r['seconds']:,} s, "
            f"{r['papers_per_s']} papers/s, ingest peak RSS {r['peak_rss_mb']:,} MB "
            f"(by quarter of the run: {r.get('ingest_rss_mb_by_quarter')}), "
            f"server peak RSS {r.get('server_peak_rss_mb', 0):,} MB, {r['report']['chunks']:,} chunks, "
            f"BM25 segments {r['bm25_segments']}"
        )
    if "rebuild" in results:
        r = results["rebuild"]
        print(
            f"BM25 full rebuild of {r['chunks']:,} chunks: {r['seconds']:,} s, peak RSS {r['peak_rss_mb']:,} MB "
            f"(by quarter: {r.get('ingest_rss_mb_by_quarter')}), segments {r['bm25_segments']}"
        )
    if "sample_minilm" in results:
        r = results["sample_minilm"]
        print(f"{args.sample:,} records, int8 MiniLM: {r['papers_per_s']} papers/s, peak RSS {r['peak_rss_mb']} MB")


def bm25_child(chunks: int, mode: str) -> None:
    """Feed `chunks` chunk texts through the ingest's SegmentBuilder; print its peak RSS (one JSON line)."""
    from rag.index.bm25 import BM25Index, SegmentBuilder
    from rag.index.store import ids_digest

    rng = random.Random(0)
    words, cum, lengths = _vocabulary()
    folder = Path(tempfile.mkdtemp(prefix="bench-bm25-")) if mode == "mapped" else None
    new = SegmentBuilder(BM25Index(ids_digest([]), []), folder)
    start = time.perf_counter()
    for i in range(chunks):
        new.add(f"c{i}", " ".join(rng.choices(words, cum_weights=cum, k=min(rng.choice(lengths), 190))))
    segments = new.finish()
    print(
        json.dumps(
            {
                "mode": mode,
                "chunks": chunks,
                "segments": [s.size for s in segments],
                "seconds": round(time.perf_counter() - start, 1),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


def bm25_only(chunks: int) -> None:
    for mode in ("mapped", "in-memory"):
        command = [sys.executable, str(Path(__file__).resolve()), "--bm25-child", str(chunks), mode]
        print(subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip(), flush=True)


if __name__ == "__main__":
    args = parser.parse_args()  # here, so other scripts can import the record writer
    if args.bm25_child:
        bm25_child(int(args.bm25_child[0]), args.bm25_child[1])
    elif args.bm25_only:
        bm25_only(args.bm25_only)
    elif args.rebuild_child:
        rebuild_child(Path(args.rebuild_child), args.port)
    elif args.child:
        child(Path(args.child[0]), Path(args.child[1]), args.port, args.minilm)
    else:
        main()
