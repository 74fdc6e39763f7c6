"""The README's benchmark command, `python bench/<script>.py`, works from any directory."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
HELPERS = ("__init__.py", "common.py", "synthetic.py")  # imported by the scripts, not run
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if p.name not in HELPERS)


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_bench_script_runs_as_a_file(script: Path, tmp_path: Path) -> None:
    if script.stem == "local_model_speed" and importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("needs the [local] extra")
    out = subprocess.run([sys.executable, str(script), "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout


@pytest.mark.slow
def test_the_arxiv_ingest_bench_measures_a_small_file(tmp_path: Path) -> None:
    """The 1M-record benchmark's whole path (file writer, child ingest, memory report) on 400 records."""
    script = BENCH / "arxiv_ingest.py"
    out = subprocess.run(
        [sys.executable, str(script), "--records", "400", "--sample", "0", "--embedded", "--folder", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    summary = out.stdout.strip().splitlines()[-1]
    assert summary.startswith("400 arXiv records") and "papers/s" in summary and "ingest peak RSS" in summary
    chunks = re.search(r"([\d,]+) chunks", summary)
    assert chunks and int(chunks.group(1).replace(",", "")) > 400  # abstract-length records: over a chunk each
    assert "ingesting" in (tmp_path / "ingest.log").read_text()


@pytest.mark.slow
@pytest.mark.server
def test_the_arxiv_ingest_bench_times_a_bm25_rebuild_from_its_server(tmp_path: Path) -> None:
    script = BENCH / "arxiv_ingest.py"
    command = [sys.executable, str(script), "--records", "300", "--sample", "0", "--folder", str(tmp_path)]
    out = subprocess.run([*command, "--rebuild"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    found = re.search(r"BM25 full rebuild of ([\d,]+) chunks: ([\d.,]+) s, peak RSS", out.stdout)
    ingested = re.search(r"([\d,]+) chunks, BM25 segments", out.stdout)
    assert found and ingested and found.group(1) == ingested.group(1)  # every chunk the ingest wrote, rebuilt
    again = subprocess.run([*command[:3], "0", *command[4:], "--rebuild"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and f"BM25 full rebuild of {found.group(1)} chunks" in again.stdout  # its folder


@pytest.mark.slow
def test_the_bm25_renormalise_bench_times_both_and_renormalised_ranks_as_one_build() -> None:
    script = BENCH / "bm25_renormalise.py"
    command = [sys.executable, str(script), "--chunks", "4000", "--segment-rows", "1000", "--queries", "20"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result["segments"] == [1000] * 4 and result["avg_length_all"] > 2 * result["avg_length_first_segment"]
    assert result["top50_shared_with_one_build_renormalised"] >= 0.98
    assert result["top50_shared_with_one_build_as_built"] < result["top50_shared_with_one_build_renormalised"]
    assert all(result[k][0] > 0 for k in ("p50_p95_ms_renormalised", "p50_p95_ms_as_built"))
