"""Shared helpers for the benchmark scripts: fresh settings, timing, summary statistics."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rag.config import Settings


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
