"""Large collections are never read whole: ingest reads only its inputs' papers, papers come in pages,
and the Library table pages through the index."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import rag.ui.library as library_ui

import rag
from rag.config import Settings
from rag.index import bm25, store
from rag.index.paper_index import PaperIndex
from rag.ingest.corpus import load_corpus
from rag.library import forget_library
from tests.helpers import write_jsonl


def _no_whole_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse any walk over a whole collection's records (store.pages is the one place that pages; walking ids
    only, as --sync does, stays allowed)."""
    real = store.pages

    def ids_only(collection: object, include: list[object]) -> object:
        if include:
            raise AssertionError(f"read the whole collection ({include})")
        return real(collection, include)  # type: ignore[arg-type]

    for module in ("rag.index.store", "rag.ingest.pipeline", "rag.index.records"):
        monkeypatch.setattr(importlib.import_module(module), "pages", ids_only)


def test_an_ingest_reads_only_the_papers_it_is_given(
    fresh_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    papers = [(p.title, p.abstract) for p in load_corpus()[:9]]
    rag.ingest([write_jsonl(tmp_path / "a.jsonl", papers[:6])], settings=fresh_settings, progress=False)
    _no_whole_reads(monkeypatch)
    monkeypatch.setattr(bm25, "MAX_DELETED", 0.9)  # a tiny index: a sync would otherwise rebuild BM25 (whole, rightly)
    more = write_jsonl(tmp_path / "b.jsonl", papers[4:9])
    report = rag.ingest([more], settings=fresh_settings, progress=False)
    assert (report.new_papers, report.updated_papers) == (3, 2)  # the two it held gain a source file
    synced = rag.ingest([more], sync=True, settings=fresh_settings, progress=False)
    assert synced.papers == 5 and synced.removed > 0
    monkeypatch.undo()
    assert {p.title for p in rag.indexed_papers(settings=fresh_settings)} == {t for t, _ in papers[4:9]}


def test_papers_come_in_pages(bundled_settings: Settings) -> None:
    everything = rag.indexed_papers(settings=bundled_settings)
    pages = [rag.indexed_papers(settings=bundled_settings, offset=o, limit=100) for o in (0, 100, 200)]
    assert [len(p) for p in pages] == [100, 100, len(everything) - 200]
    assert {p.paper_id for page in pages for p in page} == {p.paper_id for p in everything}
    walked = list(rag.Library(bundled_settings).iter_papers())
    assert len(walked) == len(everything) == rag.Library(bundled_settings).count()


def test_the_library_table_pages_a_large_collection(
    bundled_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = bundled_settings.with_overrides(ui_table_rows=100)
    total = rag.Library(settings).count()
    original = PaperIndex.papers

    def only_by_id(self: PaperIndex, ids: object = None) -> object:
        assert ids is not None, "the table read the whole collection"
        return original(self, ids)  # type: ignore[arg-type]

    monkeypatch.setattr(PaperIndex, "papers", only_by_id)
    rows, ids = library_ui.table(settings)
    last_rows, last_ids = library_ui.table(settings, page=2)
    assert len(rows) == 100 and len(last_rows) == total - 200 and not set(ids) & set(last_ids)
    assert (
        library_ui.pages_markdown(settings, 2, "") == f"*Papers 201–{total} of {total}, in the order they were added.*"
    )
    found, _ = library_ui.table(settings, "lottery")
    assert found and all("lottery" in row[0].casefold() for row in found)
    hits, _ = library_ui.table(settings, "sparse subnetworks trained in isolation", full_text=True)
    assert "On the Existence of Universal Lottery Tickets" in [row[0] for row in hits]
    monkeypatch.undo()
    small_rows, _ = library_ui.table(bundled_settings)  # under the limit: the whole collection, sortable
    assert len(small_rows) == total and library_ui.pages_markdown(bundled_settings, 0, "") == ""


def test_stats_do_not_count_source_files_of_a_large_collection(
    bundled_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = rag.Library(bundled_settings)
    assert library.stats().source_files == 4  # the four bundled listing files
    monkeypatch.setattr("rag.library.SOURCE_COUNT_LIMIT", 100)
    large = rag.Library(bundled_settings).stats()
    assert large.source_files is None and large.papers == library.count()
    forget_library(bundled_settings)  # the shared library may have counted them before the limit changed
    assert " – source files" in library_ui.stats_markdown(bundled_settings)
