"""Helpers for tests that run real servers on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rag.local.model import free_port
from rag.local.model import stop_process as stop

__all__ = ["free_port", "http_ok", "serving", "stop", "wait_until"]
ROOT = Path(__file__).resolve().parents[1]


def wait_until(check: Callable[[], bool], timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before it was ready")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"not ready after {timeout} s")


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return bool(resp.status == 200)


@contextmanager
def serving(args: list[str], ready_url: str, env: dict[str, str] | None = None, timeout: float = 180) -> Iterator[None]:
    """Run `python -m rag.cli ARGS` from the repository until the block ends; ready when ready_url answers 200."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: http_ok(ready_url), timeout=timeout, proc=proc)
        yield
    finally:
        stop(proc)
        assert proc.poll() is not None
