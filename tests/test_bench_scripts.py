"""The README's benchmark command, `python bench/<script>.py`, works from any directory."""

from __future__ import annotations

import importlib.util
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
