"""Shared helpers for the benchmark scripts: fresh settings, timing, summary statistics, a Chroma server, memory."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from rag.config import Settings
from rag.local.model import stop_process


def temp_settings(prefix: str, **overrides: object) -> Settings:
    return Settings(index_dir=Path(tempfile.mkdtemp(prefix=prefix)), _env_file=None, **overrides)  # type: ignore[call-arg]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def percentiles(samples: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


# --- a real `chroma run` server and process memory, for the scale run ---------------------------


def start_chroma_server(
    data: Path, port: int, log_file: Path | None = None, timeout: float = 60
) -> subprocess.Popen[bytes]:
    """`chroma run --path data --host 127.0.0.1 --port port` (the virtualenv's), returned once its heartbeat answers."""
    chroma = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    out = log_file.open("ab") if log_file is not None else subprocess.DEVNULL
    proc = subprocess.Popen(
        [chroma, "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/api/v2/heartbeat"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"`chroma run` exited with code {proc.returncode} before it was ready (log: {log_file})")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return proc
        except OSError:
            pass
        time.sleep(0.25)
    stop_process(proc)
    raise TimeoutError(f"`chroma run` not ready after {timeout} s (log: {log_file})")


def _status_kb(pid: int | str, key: str) -> int:
    """A kB field of /proc/<pid>/status (VmRSS: resident now, VmHWM: resident peak); 0 if unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (from /proc/<pid>/task/*/children)."""
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        for children in Path(f"/proc/{p}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in children.read_text().split())
    return tree


def process_memory_mb(pid: int) -> dict[str, float]:
    """Resident memory of a process and its children, MB: now (VmRSS) and peak (VmHWM), summed."""
    tree = _process_tree(pid)
    return {
        "rss_mb": round(sum(_status_kb(p, "VmRSS") for p in tree) / 1024, 1),
        "peak_rss_mb": round(sum(_status_kb(p, "VmHWM") for p in tree) / 1024, 1),
        "processes": len(tree),
    }


def own_memory_mb() -> dict[str, float]:
    """This Python process's resident memory, MB: peak (ru_maxrss) and now (VmRSS)."""
    return {
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_mb": round(_status_kb("self", "VmRSS") / 1024, 1),
    }


def folder_mb(path: Path) -> float:
    """Size on disk of the files under `path`, MB (allocated blocks, like `du`)."""
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_blocks * 512
        except OSError:
            pass
    return round(total / 1e6, 1)


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its children (/proc/<pid>/stat)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in _process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        except (OSError, IndexError, ValueError):
            pass
    return round(total / ticks, 2)
