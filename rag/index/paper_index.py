"""PaperIndex: the one owner of an index's state (Chroma client and collections, BM25, embedder, caches).

Everything that reads or writes an index goes through one of these, like llm's
`Collection` or paper-qa's `Docs`; tests build their own, and `rag.search()`
and friends use a default one per configuration (see rag.library).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.api.types import GetResult
from filelock import FileLock

from rag.config import Settings
from rag.index import store
from rag.index.bm25 import BM25Index, SegmentBuilder, Weight
from rag.index.bm25 import build_streamed as build_bm25
from rag.index.bm25 import load as load_bm25
from rag.index.embedder import Embedder, SpanEmbedder, make_embedder
from rag.index.errors import index_errors
from rag.index.filters import PaperFilter
from rag.index.records import paper_from_record, upgrade_layout
from rag.types import Paper

_FILTERS_KEPT = 4  # filters whose admitted chunks are kept (a chat session changes its filter rarely)
# Up to this many admitted chunks, a filtered dense search is an exact scan of their vectors, kept in memory
# (1.5 KB a chunk at 384 dimensions): Chroma's filtered HNSW query costs 100-400 ms at 100k papers. Beyond it,
# Chroma's `where` is used.
EXACT_SCAN_MAX = 200_000


@dataclass(frozen=True)
class Admitted:
    """The chunks a filter admits: BM25 rows per segment, and (up to EXACT_SCAN_MAX) their ids and unit vectors."""

    masks: list[np.ndarray]
    ids: list[str] | None = None
    vectors: np.ndarray | None = None  # float32, one unit row per id


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Collections:
    """The open collections, with the chunk-id digest and the last change's time they had when opened (a change
    of metadata only, such as a paper's new year, keeps the digest but not the time)."""

    chunks: Collection
    papers: Collection
    digest: str | None
    updated: float | None = None


class PaperIndex:
    """An index at one location (embedded folder or Chroma server), opened lazily."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        """`embedder` lets indexes with the same embedding settings share one model in memory."""
        self.settings = settings
        self._lock = threading.RLock()
        self._client: ClientAPI | None = None
        self._embedder: Embedder | None = embedder
        self._sentence_embedder: SpanEmbedder | None = None
        self._collections: Collections | None = None
        self._bm25: BM25Index | None = None
        self._admitted: dict[tuple[Any, ...], Admitted] = {}  # see admitted
        self._file_lock: FileLock | None = None

    # --- parts, created on first use ------------------------------------------------

    @property
    def location(self) -> str:
        return self.settings.index_location()

    def errors(self) -> AbstractContextManager[None]:
        """Turns Chroma, sqlite and file-system failures into RagIndexErrors that say what to do."""
        return index_errors(self.settings)

    @property
    def client(self) -> ClientAPI:
        with self._lock:
            if self._client is None:
                self._client = store.connect(self.settings)
            return self._client

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = make_embedder(self.settings)
            return self._embedder

    @property
    def loaded_embedder(self) -> Embedder | None:
        """The embedder if it was created already (to share it without loading a model)."""
        return self._embedder

    @property
    def sentence_embedder(self) -> SpanEmbedder:
        """The model that makes sentence vectors: the index's own when it can (one model in memory)."""
        with self._lock:
            if self._sentence_embedder is None:
                if isinstance(self.embedder, SpanEmbedder):
                    self._sentence_embedder = self.embedder
                else:
                    from rag.index.minilm import minilm_from_settings

                    self._sentence_embedder = minilm_from_settings(self.settings)  # threads and int8 as set
            return self._sentence_embedder

    @property
    def bm25_folder(self) -> Path:
        s = self.settings
        name = f"bm25-{s.collection}"
        if s.uses_chroma_server:
            name += f"-{s.chroma_host}-{s.chroma_port or 8000}"
        return s.index_dir / name

    # --- collections ----------------------------------------------------------------

    def exists(self) -> bool:
        """Whether the index has been built (creating nothing, and without the embedding model: no model is loaded
        and no embedding server is asked just to tell)."""
        if not self.settings.uses_chroma_server and not (self.settings.index_dir / "chroma").exists():
            return False
        if self._collections is not None:
            return True
        with self.errors():
            return store.existing(self.client, self.settings, self.settings.collection) is not None

    def open(self, create: bool = False) -> Collections | None:
        """The collections (created when `create`); None if there is no index. Upgrades an old layout."""
        with self._lock:
            if self._collections is not None:
                return self._collections
            model_id = self.embedder.model_id
            if create:
                chunks = store.create_collection(self.client, self.settings, model_id, self.embedder)
            else:
                found = store.find_collection(self.client, self.settings, model_id, self.embedder)
                if found is None:
                    return None
                chunks = found
            papers = store.papers_collection(self.client, self.settings)
            if store.layout_of(chunks) < store.LAYOUT:
                with self.ingest_lock():  # no ingest may write while records move
                    chunks = self.client.get_collection(self.settings.collection)
                    if store.layout_of(chunks) < store.LAYOUT:
                        upgrade_layout(chunks, papers, self.location)
            self._collections = Collections(chunks, papers, store.digest_of(chunks), store.updated_at(chunks))
            return self._collections

    def _existing(self) -> Collections | None:
        """The collections if the index has been built (creating nothing), else None."""
        return self.open() if self.exists() else None

    def current(self) -> Collections | None:
        """The collections as a query should see them: reopened if another process ingested or rebuilt since."""
        opened = self.open()
        if opened is None:
            return None
        try:
            fresh = self.client.get_collection(self.settings.collection)
        except Exception:  # dropped by a rebuild in another process: reopen (or find there is none)
            fresh = None
        if (
            fresh is not None
            and fresh.id == opened.chunks.id
            and store.digest_of(fresh) == opened.digest
            and store.updated_at(fresh) == opened.updated
        ):
            return opened
        log.info("the index changed since it was opened (another process ingested): reloading it")
        with self._lock:
            if self._collections is opened:  # not already reloaded by another thread
                self.reload()
        return self.open()

    def ingest_lock(self) -> FileLock:
        """The lock that keeps writers of this index apart, across processes (one file beside the index).

        One object per index, so that taking it again inside (an upgrade during an ingest) is reentrant.
        """
        with self._lock:
            if self._file_lock is None:
                self.settings.index_dir.mkdir(parents=True, exist_ok=True)
                self._file_lock = FileLock(str(self.settings.index_dir / ".ingest.lock"))
            return self._file_lock

    def reload(self) -> None:
        """Forget the client and collections; an embedded index is read from disk again on next use.

        Embedded Chroma keeps its vector index in memory and does not see what another
        process wrote; only a new client does.
        """
        with self._lock:
            self._collections = None
            if not self.settings.uses_chroma_server:
                store.forget_embedded_system(self.settings)
                self._client = None

    def written(self, digest: str) -> None:
        """Our own ingest completed: its writes went through our client, so no reload is needed."""
        with self._lock:
            if self._collections is not None:
                chunks = self._collections.chunks  # stamped by the ingest through this object
                self._collections = Collections(chunks, self._collections.papers, digest, store.updated_at(chunks))

    def close(self) -> None:
        """Let go of the client and caches (the embedder stays: others may share it)."""
        self.reload()
        with self._lock:
            self._client = None
            self._bm25 = None

    def drop(self) -> None:
        with self._lock:
            store.drop_collections(self.client, self.settings)
            self._collections = None
            self._bm25 = None

    # --- BM25 -----------------------------------------------------------------------

    def mentions(self, text: str) -> bool:
        """Whether the collection's vocabulary has every word of `text` (see BM25Index.knows)."""
        opened = self.current()
        return opened is not None and self.bm25(opened.digest).knows(text)

    def admitted(self, flt: PaperFilter, opened: Collections, bm25: BM25Index) -> Admitted:
        """The chunks `flt` admits, read once through Chroma's `where` (so both retrievers apply one rule). Kept
        for the last few filters until the index changes (digest or last-change time)."""
        key = (flt, opened.digest, opened.updated, bm25.digest, len(bm25.segments))
        with self._lock:
            found = self._admitted.get(key)
            if found is not None:
                return found
        ids: list[str] = []
        rows: list[np.ndarray] = []
        for page in store.pages(opened.chunks, ["embeddings"], where=flt.where()):
            ids += page["ids"]
            if len(ids) <= EXACT_SCAN_MAX:
                rows.append(np.asarray(page["embeddings"], dtype=np.float32).reshape(len(page["ids"]), -1))
        made = Admitted(bm25.masks(set(ids)))
        if len(ids) <= EXACT_SCAN_MAX:
            vectors = np.concatenate(rows) if rows else np.zeros((0, 0), dtype=np.float32)
            norms = np.linalg.norm(vectors, axis=1, keepdims=True) if len(vectors) else 1.0
            made = Admitted(made.masks, ids, vectors / np.maximum(norms, 1e-12))
        with self._lock:
            self._admitted = {**dict(list(self._admitted.items())[-(_FILTERS_KEPT - 1) :]), key: made}
        return made

    def term_weights(self, text: str, skip: frozenset[str] = frozenset()) -> list[Weight]:
        """Each word of `text` (but `skip`) with its BM25 token, IDF, and whether the collection knows it
        (BM25Index.weigh); empty without an index."""
        opened = self.current()
        return self.bm25(opened.digest).weigh(text, skip) if opened is not None else []

    def bm25(self, digest: str | None = None) -> BM25Index:
        """The BM25 index matching the collection's digest (loaded once, rebuilt if stale).

        `digest`: the one `current()` just read, saving a second read per query.
        """
        want = digest if digest is not None else store.digest_of(self.client.get_collection(self.settings.collection))
        with self._lock:
            if self._bm25 is not None and (self._bm25.digest == want or want is None):
                return self._bm25  # (no digest: an index whose first ingest never finished; rebuild once)
        loaded = load_bm25(self.bm25_folder)
        if loaded is not None and want is not None and loaded.digest == want:
            with self._lock:
                self._bm25 = loaded
            return loaded
        return self.rebuild_bm25()

    def rebuild_bm25(self) -> BM25Index:
        """Rebuild BM25 from what Chroma holds now (Chroma is the source of truth)."""
        opened = self.open()
        assert opened is not None
        chunks = (  # documents only: a chunk's metadata carries its sentence vectors, not needed here
            (chunk_id, doc or "")
            for page in store.pages(opened.chunks, ["documents"])
            for chunk_id, doc in zip(page["ids"], page["documents"] or [], strict=True)
        )
        built = build_bm25(chunks, store.ids_digest, self.bm25_folder)  # bounded memory at any size
        with self._lock:
            self._bm25 = built
        log.info("BM25 index rebuilt over %d chunks", built.rows)
        return built

    def segment_builder(self, before: str | None) -> SegmentBuilder:
        """Where an ingest puts the chunks it adds; it keeps nothing when the saved BM25 is not at `before` (the
        collection's digest when the ingest began): the ingest then ends in a rebuild."""
        if before == store.ids_digest([]):  # an empty index (new, or dropped for a rebuild): nothing to load
            return SegmentBuilder(BM25Index(before, []), self.bm25_folder)
        with self._lock:
            current = self._bm25
        if current is None or current.digest != before:
            current = load_bm25(self.bm25_folder)
        at_before = current is not None and before is not None and current.digest == before
        return SegmentBuilder(current if at_before else None, self.bm25_folder)

    def update_bm25(self, new: SegmentBuilder, removed: Sequence[str], digest: str) -> BM25Index:
        """BM25 after an ingest: `new`'s segments added, `removed` marked deleted; rebuilt when that cannot be."""
        updated = new.base.joined(new, removed, digest, self._chunk_texts) if new.base is not None else None
        if updated is None:
            return self.rebuild_bm25()
        updated.save(self.bm25_folder)
        with self._lock:
            self._bm25 = updated
        log.info("BM25: %d segment(s) now, %d rows marked deleted", len(updated.segments), len(updated.deleted))
        return updated

    def _chunk_texts(self, ids: list[str]) -> list[str]:
        """The documents of chunks, in the order of `ids` (read from Chroma in pages)."""
        opened = self.open()
        assert opened is not None
        found: dict[str, str] = {}
        for i in range(0, len(ids), store.PAGE):
            got = opened.chunks.get(ids=ids[i : i + store.PAGE], include=["documents"])
            found.update(zip(got["ids"], got["documents"] or [], strict=False))
        return [found.get(cid, "") for cid in ids]

    # --- reading --------------------------------------------------------------------

    def papers(self, ids: Sequence[str] | None = None) -> list[Paper]:
        """Every paper the index holds (only those of `ids` when given), in title order; empty without an index.

        Reads the whole collection when `ids` is None: use `page` or `iter_papers` for a large one.
        """
        if ids is None:
            found = list(self.iter_papers())
        else:
            with self.errors():
                opened = self._existing()
                if opened is None:
                    return []
                found = []
                for i in range(0, len(ids), store.PAGE):
                    found += _papers_of(opened.papers.get(ids=list(ids[i : i + store.PAGE]), include=_RECORD))
        return sorted(found, key=lambda p: p.title.casefold())

    def page(self, offset: int, limit: int) -> list[Paper]:
        """Papers `offset` to `offset + limit` in the order the index stores them (one request, bounded memory)."""
        with self.errors():
            opened = self._existing()
            if opened is None:
                return []
            return _papers_of(opened.papers.get(include=_RECORD, offset=offset, limit=limit))

    def iter_papers(self) -> Iterator[Paper]:
        """Every paper, page by page in stored order (bounded memory however large the collection)."""
        with self.errors():
            opened = self._existing()
            if opened is None:
                return
            for pid, doc, meta in store.iter_records(opened.papers):
                yield paper_from_record(pid, doc, meta)

    def count(self) -> int:
        """How many papers the index holds (without the embedding model, as for `exists`)."""
        if not self.exists():
            return 0
        with self.errors():
            papers = store.existing(self.client, self.settings, self.settings.collection + store.PAPERS_SUFFIX)
            if papers is None:  # an index of the first layout: opening it moves its abstracts into paper records
                opened = self._existing()
                return opened.papers.count() if opened is not None else 0
            return papers.count()


_RECORD: Any = ["documents", "metadatas"]


def _papers_of(got: GetResult) -> list[Paper]:
    n = len(got["ids"])
    docs = got["documents"] or [""] * n
    metas = got["metadatas"] or [{}] * n
    return [
        paper_from_record(pid, doc or "", dict(meta or {}))
        for pid, doc, meta in zip(got["ids"], docs, metas, strict=True)
    ]
