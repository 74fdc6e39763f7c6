"""Removing papers and the collection's stats, through the public API (what the Library tab uses)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import rag
from rag.config import Settings

PAPERS = [
    {"title": "Quokka Gradient Descent for Marsupial Networks", "abstract": "We train quokka networks. " * 5},
    {"title": "Wombat Attention Is Slow but Steady", "abstract": "We study wombat attention heads. " * 5},
]


def _write(tmp_path: Path) -> Path:
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PAPERS))
    return path


def test_removed_papers_leave_chroma_and_bm25_together(fresh_settings: Settings, tmp_path: Path) -> None:
    rag.ingest([_write(tmp_path)], settings=fresh_settings, progress=False)
    before = rag.collection_stats(fresh_settings)
    assert (before.papers, before.source_files) == (2, 1) and before.chunks >= 2
    assert before.updated_at is not None and abs(before.updated_at - time.time()) < 600
    quokka = next(p for p in rag.indexed_papers(fresh_settings) if p.title.startswith("Quokka"))
    assert rag.indexed_papers(fresh_settings, ids=[quokka.paper_id, "no-such-paper"]) == [quokka]

    assert rag.remove_papers([quokka.paper_id, "no-such-paper"], settings=fresh_settings) == 1
    after = rag.collection_stats(fresh_settings)
    assert after.papers == 1 and after.chunks < before.chunks
    for retriever in ("bm25", "dense", "hybrid"):
        hits = rag.search("quokka marsupial gradient descent", k=5, retriever=retriever, settings=fresh_settings)
        assert all(not h.title.startswith("Quokka") for h in hits), retriever
    assert rag.remove_papers([], settings=fresh_settings) == 0

    report = rag.ingest([_write(tmp_path)], settings=fresh_settings, progress=False)  # ingest brings it back
    assert report.new_papers == 1 and rag.collection_stats(fresh_settings).papers == 2


def test_stats_of_an_empty_index(fresh_settings: Settings) -> None:
    stats = rag.collection_stats(fresh_settings)
    assert (stats.papers, stats.chunks, stats.source_files, stats.updated_at) == (0, 0, 0, None)
    assert stats.location == str(fresh_settings.index_dir)
