"""Cold build and warm re-run of the bundled index (targets: <= 30 s cold, <= 2 s warm)."""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file (python bench/x.py): make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse

argparse.ArgumentParser(description=__doc__).parse_args()  # --help, and no stray arguments

import os
import subprocess
import time

import rag
from bench.common import temp_settings, timed

settings = temp_settings("bench-build-")
cold = timed(lambda: rag.ingest(settings=settings, progress=False))
warm = [timed(lambda: rag.ingest(settings=settings, progress=False)) for _ in range(3)]
env = {**os.environ, "RAG_INDEX_DIR": str(settings.index_dir)}
rag_cli = Path(sys.executable).parent / "rag"
start = time.perf_counter()
subprocess.run([str(rag_cli), "ingest", "-q"], env=env, check=True, capture_output=True)
cli_warm = time.perf_counter() - start
print(f"cold build (248 papers, in-process): {cold:.1f} s")
print(f"warm re-run (in-process, median of 3): {sorted(warm)[1]:.2f} s")
print(f"warm re-run through `rag ingest` (includes interpreter start and imports): {cli_warm:.2f} s")
