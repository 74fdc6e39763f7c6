"""A supervised local model server: its log is kept, and when it dies the cause is reported, not "unreachable".

llama.cpp fails hard (a SIGSEGV or SIGILL in native code), so the client only
sees a dropped connection. The supervisor keeps the last lines of the server's
log and its exit status, in memory for servers this process started, and in a
small state file for `rag local-model` running in another terminal, so that
`ask()`, `rag eval --local` and the tests can say what happened.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlparse

from rag.local.model import MODEL_ALIAS, bundled_gguf, exit_cause, free_port, server_command, server_env, stop_process

LOG_TAIL_LINES = 12
_SUPERVISED: dict[str, LocalServer] = {}  # "host:port" -> server started by this process
_SUPERVISED_LOCK = threading.Lock()


class LocalModelError(RuntimeError):
    """The local model server died or never became ready; the message says how and shows its log."""


@dataclass(frozen=True)
class ServerExit:
    """How a server process ended, with the last lines it wrote."""

    returncode: int
    log_tail: tuple[str, ...]

    def describe(self) -> str:
        tail = "\n".join(f"  | {line}" for line in self.log_tail) or "  (it wrote nothing)"
        return f"died ({exit_cause(self.returncode)}); last lines of its log:\n{tail}"


class LocalServer:
    """llama-cpp-python's server as a child process whose output is kept (and optionally echoed)."""

    def __init__(
        self,
        model: Path,
        host: str = "127.0.0.1",
        port: int = 8080,
        echo: IO[str] | None = None,
        state_dir: Path | None = None,
        alias: str = MODEL_ALIAS,
        threads: int | None = None,
    ) -> None:
        """`echo` receives the server's log lines; with `state_dir`, other processes can learn how it ended.
        `alias`: the model name clients ask for; `threads`: llama.cpp threads (default: the free cores)."""
        self.model, self.host, self.port, self.alias, self.threads = model, host, port, alias, threads
        self.echo = echo
        self.state_dir = state_dir
        self.tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        self.proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self.stopped_on_request = False

    @property
    def key(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> LocalServer:
        self.proc = subprocess.Popen(
            server_command(self.model, self.host, self.port, threads=self.threads, alias=self.alias),
            env=server_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._read_output, name=f"local-model-log-{self.port}", daemon=True)
        self._reader.start()
        with _SUPERVISED_LOCK:
            _SUPERVISED[self.key] = self
        if self.state_dir is not None:
            self._write_state(None)
        return self

    def _read_output(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.tail.append(line)
            if self.echo is not None:
                print(line, file=self.echo, flush=True)

    def exit(self, wait: float = 0.0) -> ServerExit | None:
        """How the server ended, or None while it runs; `wait` gives a dying process time to be reaped."""
        if self.proc is None:
            return None
        try:
            returncode = self.proc.wait(timeout=wait) if wait else self.proc.poll()
        except subprocess.TimeoutExpired:
            return None
        if returncode is None:
            return None
        if self._reader is not None:
            self._reader.join(timeout=2)  # the pipe closes with the process: the tail is complete
        return ServerExit(returncode, tuple(self.tail))

    def wait_ready(self, timeout: float = 180) -> None:
        """Block until the server answers /v1/models; LocalModelError if it dies or times out first."""
        deadline = time.monotonic() + timeout
        while True:
            ended = self.exit()
            if ended is not None:
                if self.stopped_on_request:
                    return  # stopped while starting (Ctrl-C, SIGTERM): not a failure
                raise LocalModelError(f"the local model server {ended.describe()}")
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise LocalModelError(f"the local model server was not ready after {timeout:.0f} s") from None
                time.sleep(0.25)

    def wait(self) -> ServerExit:
        """Block until the server exits (by itself or by `stop`); records how it ended."""
        assert self.proc is not None
        self.proc.wait()
        ended = self.exit()
        assert ended is not None
        if self.state_dir is not None and not self.stopped_on_request:
            self._write_state(ended)
        return ended

    def request_stop(self) -> None:
        """Ask the server to exit without waiting (safe in a signal handler: `wait` returns when it has)."""
        self.stopped_on_request = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def stop(self, timeout: float = 15) -> None:
        """Terminate, then kill if it does not exit in `timeout` seconds; forget its state."""
        self.stopped_on_request = True
        if self.proc is not None and self.proc.poll() is None:
            stop_process(self.proc, timeout)
        with _SUPERVISED_LOCK:
            if _SUPERVISED.get(self.key) is self:
                del _SUPERVISED[self.key]
        if self.state_dir is not None:
            self._state_path().unlink(missing_ok=True)

    def _state_path(self) -> Path:
        assert self.state_dir is not None
        return state_file(self.state_dir, self.host, self.port)

    def _write_state(self, ended: ServerExit | None) -> None:
        assert self.proc is not None
        record = {
            "pid": self.proc.pid,
            "supervisor_pid": os.getpid(),
            "model": str(self.model),
            "returncode": None if ended is None else ended.returncode,
            "log_tail": [] if ended is None else list(ended.log_tail),
        }
        path = self._state_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
            json.dump(record, tmp)
        os.replace(tmp.name, path)


def state_file(state_dir: Path, host: str, port: int) -> Path:
    return state_dir / f"{host}_{port}.json"


def _running(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped by its supervisor, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (not Linux): trust the signal check
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def server_failure(base_url: str | None, state_dir: Path | None = None, wait: float = 3.0) -> str | None:
    """If `base_url` is a local model server that died, how it died (with its log tail); else None.

    Looks at servers this process started, then at `rag local-model` state files.
    `wait` bounds how long to give a process that just dropped its connections to finish dying.
    """
    if not base_url:
        return None
    parsed = urlparse(base_url)
    if parsed.hostname is None or parsed.port is None:
        return None
    key = f"{parsed.hostname}:{parsed.port}"
    with _SUPERVISED_LOCK:
        server = _SUPERVISED.get(key)
    if server is not None:
        ended = server.exit(wait=wait)
        return None if ended is None else ended.describe()
    if state_dir is None:
        return None
    path = state_file(state_dir, parsed.hostname, parsed.port)
    deadline = time.monotonic() + wait
    while True:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if record.get("returncode") is not None:
            return ServerExit(int(record["returncode"]), tuple(record.get("log_tail", []))).describe()
        running = _running(int(record["pid"]))
        if time.monotonic() > deadline:
            # Still running: the failure is something else. Dead: its supervisor never said how.
            return None if running else "is no longer running (its supervisor, `rag local-model`, was stopped too)"
        time.sleep(0.05)  # a process that just dropped its connections may be dying: give it a moment


def serve(
    model: Path,
    host: str,
    port: int,
    state_dir: Path | None = None,
    alias: str = MODEL_ALIAS,
    threads: int | None = None,
) -> int:
    """`rag local-model`: run the server in the foreground, echoing its log, until Ctrl-C or SIGTERM.

    Returns 0 after a requested stop; raises LocalModelError when the server dies by itself.
    """
    server = LocalServer(model, host, port, echo=sys.stderr, state_dir=state_dir, alias=alias, threads=threads)
    server.start()

    def stop(signum: int, frame: object) -> None:
        server.request_stop()  # no waiting here: the main thread is inside the child's wait()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        server.wait_ready()
        print(f"serving {model.name} as '{alias}'; use:", flush=True)
        print(f"  export OPENAI_BASE_URL={server.url} RAG_CHAT_MODEL={alias}", flush=True)
        ended = server.wait()
    except KeyboardInterrupt:
        server.stop()
        print("local model stopped", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
    if server.stopped_on_request:
        server.stop()  # forget its state; it has exited
        return 0
    raise LocalModelError(f"the local model server at {server.url} {ended.describe()}")


@contextmanager
def running_local_model(
    port: int | None = None, model: Path | None = None, timeout: float = 300, alias: str = MODEL_ALIAS
) -> Iterator[LocalServer]:
    """Start a local model (default: the bundled SmolLM2) for the duration of a block (e.g. `rag eval --local`)."""
    server = LocalServer(model or bundled_gguf(), "127.0.0.1", port or free_port(), alias=alias).start()
    try:
        server.wait_ready(timeout)
        yield server
    finally:
        server.stop()
