"""The index and answer logic with a fake embedder (tests/fakes.py): seconds, not minutes, for the inner loop
(`pytest -m "not slow"`). What these check does not depend on the model: bookkeeping, idempotence, citations
that are always among the sources, abstentions that name the nearest papers."""

from __future__ import annotations

from pathlib import Path

import rag
from rag.config import Settings
from tests.fakes import HashEmbedder
from tests.helpers import make_settings, write_jsonl

PAPERS = [
    ("Capybara Committees Reach Consensus", "We study committees of capybaras voting on optimiser steps. "
     "Capybara committees converge in fewer rounds than gradient descent on convex problems."),
    ("Otter Gradients for Sparse Networks", "We prune networks with otter gradients. Sparse otter networks keep 90% "
     "of their accuracy with a tenth of the weights."),
    ("Heron Attention Is Slow but Steady", "We analyse heron attention heads in transformers. Heron heads attend "
     "to distant tokens and slow training by a factor of two."),
]  # fmt: skip


def _library(tmp_path: Path) -> rag.Library:
    settings: Settings = make_settings(tmp_path / "index")
    return rag.Library(settings, embedder=HashEmbedder())


def test_ingest_is_idempotent_and_search_finds_by_words(tmp_path: Path) -> None:
    lib = _library(tmp_path)
    first = lib.ingest([write_jsonl(tmp_path / "p.jsonl", PAPERS)], include_bundled=False, progress=False)
    again = lib.ingest([write_jsonl(tmp_path / "p.jsonl", PAPERS)], include_bundled=False, progress=False)
    assert (first.new_papers, first.papers) == (3, 3) and (again.added, again.unchanged_papers) == (0, 3)
    assert lib.search("otter gradients pruning", k=1)[0].title == "Otter Gradients for Sparse Networks"
    assert lib.stats().papers == 3 and lib.index.loaded_embedder is not None


def test_every_citation_is_a_retrieved_source_and_quoted_from_its_abstract(tmp_path: Path) -> None:
    lib = _library(tmp_path)
    lib.ingest([write_jsonl(tmp_path / "p.jsonl", PAPERS)], include_bundled=False, progress=False)
    for question in ("How do heron attention heads slow training?", "Which papers prune networks?"):
        answer = lib.ask(question)
        retrieved = {h.title: h for h in answer.sources}
        for citation in answer.citations:
            assert citation.title in retrieved
            assert citation.evidence in dict(PAPERS)[citation.title]
        assert answer.abstained == (answer.citations == [])


def test_removal_leaves_search_and_the_count_consistent(tmp_path: Path) -> None:
    lib = _library(tmp_path)
    lib.ingest([write_jsonl(tmp_path / "p.jsonl", PAPERS)], include_bundled=False, progress=False)
    heron = next(p.paper_id for p in lib.papers() if p.title.startswith("Heron"))
    assert lib.remove([heron]) == 1 and lib.count() == 2
    assert all(not h.title.startswith("Heron") for h in lib.search("heron attention heads", k=3))


def test_a_source_file_name_with_a_comma_comes_back_whole(tmp_path: Path) -> None:
    lib = _library(tmp_path)
    odd = write_jsonl(tmp_path / "smith, jones (2024).jsonl", PAPERS[:1])
    lib.ingest([odd], include_bundled=False, progress=False)
    assert [p.sources for p in lib.papers()] == [("smith, jones (2024).jsonl",)]


def test_the_record_schema_round_trips_and_reads_the_older_comma_joined_sources() -> None:
    from rag.index.records import ChunkMeta, PaperMeta, paper_metadata
    from rag.types import Paper

    chunk = ChunkMeta("p1", "T", 2, 3, "h", ((0, 5), (6, 9)), None)
    assert ChunkMeta.decode(chunk.encode()) == chunk and chunk.sentence_vectors() is None
    paper = Paper("p1", "T", "A.", ("a, b.jsonl", "c.txt"), {"year": 2024, "title": "shadowed"})
    decoded = PaperMeta.decode(paper_metadata(paper, 3, "h"))
    assert decoded.sources == ("a, b.jsonl", "c.txt") and decoded.metadata == {"year": 2024, "title": "shadowed"}
    assert PaperMeta.decode({"title": "T", "sources": "a.txt,b.txt"}).sources == ("a.txt", "b.txt")


def test_forgetting_an_embedded_system_relies_on_a_chromadb_private_that_still_exists(tmp_path: Path) -> None:
    """store.forget_embedded_system pops chromadb's private per-folder system cache (no public way exists): fail
    here, loudly, the day chromadb renames or reshapes it, instead of silently serving a stale index."""
    from chromadb.api.shared_system_client import SharedSystemClient

    from rag.index import store

    settings = make_settings(tmp_path / "index")
    first = store.connect(settings)
    key = str(settings.index_dir / "chroma")
    assert key in SharedSystemClient._identifier_to_system
    store.forget_embedded_system(settings)
    assert key not in SharedSystemClient._identifier_to_system
    second = store.connect(settings)
    assert second._server is not first._server  # a fresh system behind it: it reads the folder again
