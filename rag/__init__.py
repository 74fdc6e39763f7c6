"""Ask questions of a collection of paper abstracts; answers cite the papers they rest on.

Public API: `Library` (a collection you ingest into, search and ask) and, over a default
Library per configuration, `load_corpus`, `ingest` (alias `build_index`), `search`, `ask`,
`ask_stream`, `indexed_papers`, `index_exists`; the types and the errors they raise.
"""

from __future__ import annotations

from rag.privacy import apply_privacy_switches

apply_privacy_switches()  # before any library below reads its telemetry switch

from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

from rag.answer.answerers import BackendError
from rag.bibtex import to_bibtex
from rag.config import Settings, get_settings
from rag.index.errors import (
    EmbeddingServerError,
    IndexMissing,
    IndexModelMismatch,
    IndexUnavailable,
    IndexWriteError,
    RagIndexError,
)
from rag.index.filters import PaperFilter
from rag.ingest.corpus import load_corpus
from rag.ingest.errors import CorpusError
from rag.ingest.pipeline import IngestReport
from rag.library import Library, library_for
from rag.types import Answer, Citation, CollectionStats, Hit, Paper


def ingest(
    paths: Sequence[str | Path] | None = None,
    *,
    include_bundled: bool | None = None,
    sync: bool = False,
    rebuild: bool = False,
    settings: Settings | None = None,
    progress: bool = True,
) -> IngestReport:
    """Add the papers of `paths` (default: the bundled collection) to the index; see `Library.ingest`."""
    return library_for(settings).ingest(
        paths, include_bundled=include_bundled, sync=sync, rebuild=rebuild, progress=progress
    )


build_index = ingest


def search(
    query: str,
    k: int | None = None,
    *,
    retriever: str | None = None,
    settings: Settings | None = None,
    where: PaperFilter | dict[str, Any] | None = None,
) -> list[Hit]:
    """The `k` papers that best match `query`, best first; builds the index on first use. `where`: only papers
    it admits, e.g. `rag.PaperFilter(year_from=2022)` or `{"author": "Hinton"}`."""
    return library_for(settings).search(query, k, retriever, settings=settings, where=where)


def ask(question: str, history: list[dict[str, Any]] | None = None, **overrides: Any) -> Answer:
    """Answer `question`, citing the papers it rests on. Overrides: `k`, `settings`, any Settings field (one that
    chooses an index or embedding model, such as `index_dir`, picks that index's Library)."""
    library, rest = _library_for_overrides(overrides)
    return library.ask(question, history, **rest)


def ask_stream(
    question: str, history: list[dict[str, Any]] | None = None, **overrides: Any
) -> Generator[str | Answer, None, None]:
    """Text pieces as the answer is written, then the final verified `Answer` (overrides as for `ask`)."""
    library, rest = _library_for_overrides(overrides)
    return library.ask_stream(question, history, **rest)


def _library_for_overrides(overrides: dict[str, Any]) -> tuple[Library, dict[str, Any]]:
    """The Library the overrides' index and embedding settings name, and the overrides left for it."""
    from rag.library import EMBEDDING_FIELDS, INDEX_FIELDS

    choosing = {k: v for k, v in overrides.items() if k in (*INDEX_FIELDS, *EMBEDDING_FIELDS) and v is not None}
    rest = {k: v for k, v in overrides.items() if k not in choosing}
    if not choosing:
        return library_for(overrides.get("settings")), rest
    base = overrides.get("settings") or get_settings()
    chosen = base.with_overrides(**choosing)
    rest["settings"] = chosen
    return library_for(chosen), rest


def indexed_papers(
    settings: Settings | None = None, ids: Sequence[str] | None = None, *, offset: int = 0, limit: int | None = None
) -> list[Paper]:
    """The papers the index holds (only those of `ids` when given), in title order.

    With `limit`, one page in stored order, read without loading the rest (for large collections);
    `Library.iter_papers` walks them all page by page.
    """
    return library_for(settings).papers(ids, offset=offset, limit=limit)


def remove_papers(paper_ids: Sequence[str], settings: Settings | None = None) -> int:
    """Remove papers from the index (Chroma and BM25 together); how many it held. `rag ingest` restores bundled ones."""
    return library_for(settings).remove(paper_ids)


def collection_stats(settings: Settings | None = None) -> CollectionStats:
    """Papers, chunks, source files, embedding model, location and last change of the index."""
    return library_for(settings).stats()


def index_exists(settings: Settings | None = None) -> bool:
    """Whether the configured index has been built (creates nothing)."""
    return library_for(settings).exists()


__all__ = [
    "Answer",
    "BackendError",
    "Citation",
    "CollectionStats",
    "CorpusError",
    "EmbeddingServerError",
    "Hit",
    "IndexMissing",
    "IndexModelMismatch",
    "IndexUnavailable",
    "IndexWriteError",
    "IngestReport",
    "Library",
    "Paper",
    "PaperFilter",
    "RagIndexError",
    "Settings",
    "ask",
    "ask_stream",
    "build_index",
    "collection_stats",
    "get_settings",
    "index_exists",
    "indexed_papers",
    "ingest",
    "load_corpus",
    "remove_papers",
    "search",
    "to_bibtex",
]
