"""Removing papers and the collection's stats, through the public API (what the Library tab uses)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

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


def test_an_override_that_chooses_another_index_is_honoured_or_refused(
    bundled_settings: Settings, tmp_path: Path
) -> None:
    """rag.ask(index_dir=…) answers from that index; a Library refuses to answer from another one."""
    import rag
    from rag.library import library_for

    other = tmp_path / "other"
    own = Settings(index_dir=other, _env_file=None)  # type: ignore[call-arg]
    rag.ingest([_one_paper(tmp_path)], include_bundled=False, settings=own, progress=False)
    answer = rag.ask("Do capybara committees beat gradient descent?", settings=bundled_settings, index_dir=other)
    assert [h.title for h in answer.sources] == ["Capybara Committees Beat Gradient Descent"]
    with pytest.raises(ValueError, match=r"index_dir would choose another index .* use rag\.Library"):
        library_for(bundled_settings).ask("What is a lottery ticket?", index_dir=other)
    with pytest.raises(ValueError, match="embedding_int8"):
        library_for(bundled_settings).ask("What is a lottery ticket?", embedding_int8=False)


def _one_paper(folder: Path) -> Path:
    path = folder / "one.jsonl"
    abstract = "Committees of capybaras vote on each optimiser step and converge in fewer rounds than gradient descent."
    path.write_text(json.dumps({"title": "Capybara Committees Beat Gradient Descent", "abstract": abstract}) + "\n")
    return path


def test_counting_papers_loads_no_embedding_model(bundled_settings: Settings) -> None:
    """exists() and count() read the index only: no model is loaded and no embedding server is asked."""
    from rag.index.paper_index import PaperIndex

    index = PaperIndex(bundled_settings)
    assert index.exists() and index.count() == len(rag.load_corpus())
    assert index.loaded_embedder is None
