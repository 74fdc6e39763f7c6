"""Library: a collection of papers you can ingest into, search and ask, over one PaperIndex.

`rag.search()`, `rag.ask()`, `rag.ingest()` and friends are thin wrappers over a default
Library per index configuration; notebooks and tests can hold their own:

    lib = rag.Library(rag.Settings(index_dir="my-index"))
    lib.ingest(["mine.jsonl"]); lib.ask("What is a lottery ticket?")
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from rag.config import Settings, get_settings
from rag.index import store
from rag.index.embedder import Embedder
from rag.index.errors import IndexMissing
from rag.index.filters import PaperFilter
from rag.index.paper_index import PaperIndex
from rag.types import CollectionStats, Hit, Paper

if TYPE_CHECKING:
    from rag.ingest.pipeline import IngestReport
    from rag.types import Answer

log = logging.getLogger(__name__)


class Library:
    """The papers at one index location, with everything needed to add, find and ask about them."""

    def __init__(self, settings: Settings | None = None, embedder: Embedder | None = None) -> None:
        self.settings = settings or get_settings()
        self.index = PaperIndex(self.settings, embedder)
        self._sources: tuple[str | None, int | None] | None = None  # (digest, number of source files)
        self._build_lock = threading.Lock()

    def ingest(
        self,
        paths: Sequence[str | Path] | None = None,
        *,
        include_bundled: bool | None = None,
        sync: bool = False,
        rebuild: bool = False,
        progress: bool = True,
    ) -> IngestReport:
        """Add the papers of `paths` (default: the bundled collection); see rag.ingest.pipeline."""
        from rag.ingest.pipeline import ingest

        return ingest(self.index, paths, include_bundled=include_bundled, sync=sync, rebuild=rebuild, progress=progress)

    def ensure_built(self) -> None:
        """Build the index from the bundled collection if there is none yet (first use).

        Checked again under the ingest lock: an index another process is (re)building is left alone.
        """
        from rag.ingest.pipeline import ingest

        with self._build_lock:
            if self.index.exists():
                return
            with self.index.errors(), self.index.ingest_lock():  # reentrant: the ingest takes it again
                self.index.reload()  # another process may have built it while this one waited for the lock
                if not self.index.exists():
                    log.warning("no index at %s yet: building it from the bundled collection", self.index.location)
                    ingest(self.index, progress=False)

    def search(
        self,
        query: str,
        k: int | None = None,
        retriever: str | None = None,
        settings: Settings | None = None,
        where: PaperFilter | Mapping[str, Any] | None = None,
    ) -> list[Hit]:
        """The `k` papers that best match `query`, best first (builds the index on first use); with `where`
        (a `PaperFilter` or a dict of its fields), only among the papers it admits."""
        from rag.index.search import search

        flt = PaperFilter.of(where)
        try:
            return search(self.index, query, k, retriever, settings=settings, where=flt)
        except IndexMissing:  # raised after the query and k were checked: a bad one builds nothing
            self.ensure_built()
            return search(self.index, query, k, retriever, settings=settings, where=flt)

    def ask_stream(
        self, question: str, history: list[dict[str, Any]] | None = None, **overrides: Any
    ) -> Generator[str | Answer, None, None]:
        """Text pieces as the answer is written, then the verified Answer (builds the index on first use).

        Overrides change how this Library answers; one that would choose another index or embedding model is
        refused (use another Library, or the module-level `rag.ask`, which picks the Library the settings name).
        """
        from rag.answer.ask import ask_stream

        changed = other_index(self.settings, overrides)
        if changed:
            raise ValueError(
                f"{', '.join(changed)} would choose another index or embedding model than this Library's "
                f"({self.index.location}); use rag.Library(rag.Settings(...)) for it, or rag.ask(..., settings=...)"
            )
        stream = ask_stream(self.index, question, history, **dict(overrides))
        try:
            first = next(stream)  # checks the question, then retrieves
        except IndexMissing:
            self.ensure_built()
            stream = ask_stream(self.index, question, history, **dict(overrides))
            first = next(stream)
        yield first
        yield from stream

    def ask(self, question: str, history: list[dict[str, Any]] | None = None, **overrides: Any) -> Answer:
        """Answer `question`, citing the papers it rests on (see rag.answer.ask)."""
        *_, final = self.ask_stream(question, history, **overrides)  # text pieces, then the Answer
        assert not isinstance(final, str)
        return final

    def papers(self, ids: Sequence[str] | None = None, offset: int = 0, limit: int | None = None) -> list[Paper]:
        """The papers the index holds, in title order; only those of `ids` when given.

        With `limit`, one page (`offset`, `limit`) in stored order: for collections too large to read whole.
        """
        if limit is not None:
            return self.index.page(offset, limit)
        return self.index.papers(ids)

    def iter_papers(self) -> Iterator[Paper]:
        """Every paper, page by page (bounded memory)."""
        return self.index.iter_papers()

    def count(self) -> int:
        """How many papers the index holds."""
        return self.index.count()

    def remove(self, paper_ids: Sequence[str]) -> int:
        """Remove these papers from the index (Chroma and BM25 together); how many it held.

        A removed bundled paper comes back with `rag ingest`.
        """
        from rag.ingest.pipeline import remove

        return remove(self.index, paper_ids)

    def stats(self) -> CollectionStats:
        """What the index holds: papers, chunks, source files, embedding model, location, last change.

        Counting source files reads every paper's record (in pages), so it is done only up to
        SOURCE_COUNT_LIMIT papers (None beyond) and kept until the index changes.
        """
        opened = self.index.current() if self.index.exists() else None
        digest = store.digest_of(opened.chunks) if opened else None
        papers = self.index.count()
        cached = self._sources
        if cached is None or cached[0] != digest or digest is None:
            counted = None
            if papers <= SOURCE_COUNT_LIMIT:
                counted = len({src for p in self.index.iter_papers() for src in p.sources})
            cached = self._sources = (digest, counted)
        return CollectionStats(
            papers=papers,
            chunks=opened.chunks.count() if opened else 0,
            source_files=cached[1],
            embedding_model=(store.recorded_model(opened.chunks) if opened else None) or self.settings.embedding_model,
            location=self.index.location,
            updated_at=store.updated_at(opened.chunks) if opened else None,
        )

    def exists(self) -> bool:
        return self.index.exists()

    def close(self) -> None:
        self.index.close()


SOURCE_COUNT_LIMIT = 50_000  # papers up to which stats() counts source files (a whole-collection read)

_DEFAULTS: dict[tuple[object, ...], Library] = {}
_DEFAULTS_LOCK = threading.Lock()


# The settings that choose an index and its embedding model, derived from the settings model so that a new
# embedding_* field cannot make two configurations share the wrong embedder.
INDEX_FIELDS = ("index_dir", "chroma_host", "chroma_port", "collection")
EMBEDDING_FIELDS = (
    *(f for f in Settings.model_fields if f.startswith("embedding_")),
    "openai_base_url",
    "openai_api_key",
)


def _keys(s: Settings) -> tuple[tuple[object, ...], tuple[object, ...]]:
    """(which index, which embedding model): libraries with the same model share it."""
    model = tuple(_value(getattr(s, f)) for f in EMBEDDING_FIELDS)
    return (*(str(getattr(s, f)) for f in INDEX_FIELDS), *model), model


def _value(value: object) -> object:
    """A setting as a dictionary key: a secret by its value (kept in memory only), so two keys stay apart."""
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def other_index(base: Settings, overrides: dict[str, Any]) -> list[str]:
    """The overrides (or the `settings` override's fields) that select another index or embedder than `base`."""
    given = overrides.get("settings")
    changed = [f for f in (*INDEX_FIELDS, *EMBEDDING_FIELDS) if f in overrides and overrides[f] != getattr(base, f)]
    if isinstance(given, Settings) and _keys(given)[0] != _keys(base)[0]:
        changed.append("settings")
    return changed


def library_for(settings: Settings | None = None) -> Library:
    """The default Library of the index that `settings` configure (one per location and embedder)."""
    s = settings or get_settings()
    key, model = _keys(s)
    with _DEFAULTS_LOCK:
        if key not in _DEFAULTS:
            twin = next((lib for k, lib in _DEFAULTS.items() if _keys(lib.settings)[1] == model), None)
            shared = twin.index.loaded_embedder if twin is not None else None
            _DEFAULTS[key] = Library(s, shared)
        return _DEFAULTS[key]


def forget_library(settings: Settings) -> None:
    """Close and drop the default Library of `settings` (tests do this for their throwaway indexes)."""
    with _DEFAULTS_LOCK:
        lib = _DEFAULTS.pop(_keys(settings)[0], None)
    if lib is not None:
        lib.close()
