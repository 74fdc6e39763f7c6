"""Ingest and search against a real `chroma run` server on loopback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import rag
from rag.config import Settings
from rag.index.paper_index import PaperIndex
from rag.ingest.corpus import load_corpus
from tests.helpers import free_port, http_ok, stop, wait_until

pytestmark = pytest.mark.server


def start_chroma(data: Path, port: int) -> subprocess.Popen[bytes]:
    chroma = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    proc = subprocess.Popen(
        [chroma, "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/api/v2/heartbeat"), timeout=60, proc=proc)
    return proc


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    port = free_port()
    proc = start_chroma(tmp_path_factory.mktemp("chroma-server"), port)
    try:
        yield "127.0.0.1", port
    finally:
        stop(proc)


def test_ingest_and_search_through_the_server(chroma_server: tuple[str, int], tmp_path: Path) -> None:
    host, port = chroma_server
    settings = Settings(index_dir=tmp_path / "local", chroma_host=host, chroma_port=port, _env_file=None)  # type: ignore[call-arg]
    papers = [p for p in load_corpus() if "Lottery" in p.title or "Scaling" in p.title]
    f = tmp_path / "subset.jsonl"
    f.write_text("".join(json.dumps({"title": p.title, "abstract": p.abstract}) + "\n" for p in papers))
    report = rag.ingest([f], settings=settings, progress=False)
    assert report.papers == len(papers) and report.added == report.chunks > 0
    assert report.location == f"chroma server {host}:{port}"
    assert not (tmp_path / "local" / "chroma").exists()  # vectors live on the server, not here

    again = rag.ingest([f], settings=settings, progress=False)
    assert again.added == 0 and again.unchanged_papers == len(papers)
    hits = rag.search("sparse subnetworks that work for many tasks", k=3, settings=settings)
    assert "On the Existence of Universal Lottery Tickets" in [h.title for h in hits]
    opened = PaperIndex(settings).open()
    assert opened is not None and opened.chunks.count() == report.chunks


def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings(index_dir=tmp_path, chroma_host="127.0.0.1", chroma_port=free_port(), _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(rag.IndexUnavailable, match="chroma run"):
        rag.search("anything", settings=settings)


def test_chat_says_the_server_is_down_and_recovers_when_it_is_back(tmp_path: Path) -> None:
    from rag.ui.app import respond

    port = free_port()
    data = tmp_path / "server"
    proc = start_chroma(data, port)
    settings = Settings(index_dir=tmp_path / "local", chroma_host="127.0.0.1", chroma_port=port, _env_file=None)  # type: ignore[call-arg]
    papers = [p for p in load_corpus() if "Lottery" in p.title]
    f = tmp_path / "subset.jsonl"
    f.write_text("".join(json.dumps({"title": p.title, "abstract": p.abstract}) + "\n" for p in papers))
    try:
        rag.ingest([f], settings=settings, progress=False)

        def chat_reply() -> str:  # the answer, its sources, and a collapsible abstract per citation
            chat = list(respond("What is a universal lottery ticket?", [], [], 3, settings))[-1][1]
            return "\n".join(str(m["content"]) for m in chat if m["role"] == "assistant")

        assert "answered by" in chat_reply()
        stop(proc)
        down = chat_reply().replace("\\", "")
        assert "cannot reach the chroma server 127.0.0.1:" in down and "chroma run" in down
        assert "Something went wrong" not in down
        proc = start_chroma(data, port)
        assert "answered by" in chat_reply()
    finally:
        stop(proc)
