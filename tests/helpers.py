"""Helpers for tests that run real servers on loopback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rag.config import Settings
from rag.index.paper_index import Collections, PaperIndex
from rag.local.model import free_port
from rag.local.model import stop_process as stop

__all__ = [
    "free_port",
    "http_ok",
    "make_settings",
    "opened",
    "run_rag",
    "serving",
    "stop",
    "wait_until",
    "write_jsonl",
]
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


@contextmanager
def chat_with_local_model(
    source_index: Path, workdir: Path, model_args: list[str], chat_env: dict[str, str], model_timeout: float = 180
) -> Iterator[str]:
    """`rag local-model MODEL_ARGS` and `rag ui` answering with it from a copy of `source_index` made in
    `workdir`: the UI's URL. `chat_env`: the chat settings (RAG_CHAT_MODEL, timeouts, ...); the backend and
    base URL are set here."""
    index_dir = workdir / "index"
    shutil.copytree(source_index, index_dir)
    model_port, ui_port = free_port(), free_port()
    model = ["local-model", *model_args, "--port", str(model_port)]
    with serving(model, f"http://127.0.0.1:{model_port}/v1/models", timeout=model_timeout):
        env = {
            "RAG_INDEX_DIR": str(index_dir),
            "RAG_LLM": "openai",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{model_port}/v1",
            **chat_env,
        }
        url = f"http://127.0.0.1:{ui_port}/"
        with serving(["ui", "--port", str(ui_port)], url, env, 120):
            yield url


def make_settings(index_dir: Path, **overrides: object) -> Settings:
    """Settings of an index at `index_dir`, not read from a .env file."""
    return Settings(index_dir=index_dir, _env_file=None, **overrides)  # type: ignore[call-arg]


def write_jsonl(path: Path, papers: list[tuple[str, str]]) -> Path:
    """A JSONL input file of (title, abstract) papers."""
    path.write_text("".join(json.dumps({"title": t, "abstract": a}) + "\n" for t, a in papers))
    return path


def opened(settings: Settings) -> Collections:
    """The index's collections, through an index object of the test's own."""
    found = PaperIndex(settings).open()
    assert found is not None
    return found


def run_rag(
    *args: str | bytes, env: dict[str, str] | None = None, prefix: str = "", index_dir: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m rag.cli ARGS` from the repository (inside a private mount namespace after `prefix`, shell
    commands that prepare it, when given)."""
    command: list[str | bytes] = [sys.executable, "-m", "rag.cli", *args]
    if prefix:
        quoted = " ".join(f"'{a}'" if isinstance(a, str) else a.decode("latin-1") for a in command)
        command = ["unshare", "-m", "sh", "-c", f"{prefix} && exec {quoted}"]
    extra = {**(env or {}), **({"RAG_INDEX_DIR": str(index_dir)} if index_dir is not None else {})}
    return subprocess.run(command, cwd=ROOT, env={**os.environ, **extra}, capture_output=True, text=True, timeout=600)
