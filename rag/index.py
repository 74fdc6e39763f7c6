"""An open index: the Chroma collection, its LangChain vector store and the BM25 index in sync."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from chromadb.api.models.Collection import Collection
from langchain_core.embeddings import Embeddings

from rag import lexical
from rag.config import Settings, get_settings
from rag.embeddings import embedder_id, get_embedder
from rag.store import (
    DIGEST_KEY,
    LAYOUT,
    LAYOUT_KEY,
    create_collection,
    current_digest,
    find_collection,
    ids_digest,
    index_errors,
    layout_of,
    papers_collection,
    vector_store,
)
from rag.types import Paper

if TYPE_CHECKING:
    from langchain_chroma import Chroma

log = logging.getLogger(__name__)

_PAGE = 5000
_LEXICAL: dict[str, lexical.LexicalIndex] = {}
_LEXICAL_LOCK = threading.Lock()


@dataclass
class IndexHandle:
    settings: Settings
    embedder: Embeddings
    model_id: str
    collection: Collection  # chunks: text, vector, sentence spans and vectors
    papers: Collection  # one record per paper: abstract, title, sources, metadata
    digest: str | None = None  # the chunk-id digest when this handle was opened

    @cached_property
    def store(self) -> Chroma:
        """LangChain's vector store over the collection (imported on first use: ingest does without it)."""
        return vector_store(self.settings, self.embedder, self.model_id)

    def lexical_folder(self) -> Path:
        s = self.settings
        name = f"bm25-{s.collection}"
        if s.uses_chroma_server:
            name += f"-{s.chroma_host}-{s.chroma_port or 8000}"
        return s.index_dir / name


def open_index(settings: Settings | None = None, create: bool = False) -> IndexHandle | None:
    """The configured index; None if it does not exist and `create` is false."""
    s = settings or get_settings()
    embedder = get_embedder(s)
    model_id = embedder_id(embedder)
    collection = create_collection(s, model_id) if create else find_collection(s, model_id)
    if collection is None:
        return None
    digest = (collection.metadata or {}).get(DIGEST_KEY)
    handle = IndexHandle(
        s, embedder, model_id, collection, papers_collection(s), None if digest is None else str(digest)
    )
    if layout_of(collection) < LAYOUT:
        upgrade_layout(handle)
    return handle


def upgrade_layout(handle: IndexHandle) -> None:
    """Move abstracts out of chunk metadata (layout 1) into one record per paper; nothing is re-embedded."""
    log.warning("upgrading the index at %s to store each abstract once (one-time)", handle.settings.index_location())
    firsts: dict[str, dict[str, Any]] = {}
    sums: dict[str, np.ndarray] = {}
    offset = 0
    while True:
        page = handle.collection.get(include=["metadatas", "embeddings"], limit=_PAGE, offset=offset)
        if not page["ids"]:
            break
        embeddings = page["embeddings"] if page["embeddings"] is not None else []
        for meta, vector in zip(page["metadatas"] or [], embeddings, strict=True):
            pid = str(meta["paper_id"])
            sums[pid] = sums.get(pid, 0) + np.asarray(vector, dtype=np.float32)
            if meta.get("chunk_index") == 0 or pid not in firsts:
                firsts[pid] = dict(meta)
        offset += len(page["ids"])
    from rag.ingest import paper_metadata  # the record format is the ingest's

    pids = list(firsts)
    for i in range(0, len(pids), 1000):
        batch = pids[i : i + 1000]
        papers = [_paper_from_layout1(pid, firsts[pid]) for pid in batch]
        vectors = [sums[pid] / (np.linalg.norm(sums[pid]) or 1.0) for pid in batch]
        metas: list[Mapping[str, Any]] = [
            paper_metadata(p, int(firsts[p.paper_id]["n_chunks"]), str(firsts[p.paper_id]["paper_hash"]))
            for p in papers
        ]
        handle.papers.upsert(
            ids=batch, embeddings=np.array(vectors), documents=[p.abstract for p in papers], metadatas=metas
        )
    meta = dict(handle.collection.metadata or {})
    meta.pop("hnsw:space", None)
    meta[LAYOUT_KEY] = LAYOUT
    handle.collection.modify(metadata=meta)


_LAYOUT1_KEYS = {
    "paper_id",
    "title",
    "abstract",
    "chunk_index",
    "n_chunks",
    "paper_hash",
    "sources",
    "sent_spans",
    "sent_vecs",
}


def _paper_from_layout1(pid: str, meta: dict[str, Any]) -> Paper:
    sources = tuple(str(meta.get("sources", "")).split(",")) if meta.get("sources") else ()
    extra = {k: v for k, v in meta.items() if k not in _LAYOUT1_KEYS}
    return Paper(pid, str(meta.get("title")), str(meta.get("abstract", "")), sources, extra)


def iter_records(collection: Collection, include_documents: bool = True) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(id, document, metadata) of every chunk, fetched page by page (bounded memory and request size)."""
    include: list[Any] = ["metadatas", "documents"] if include_documents else ["metadatas"]
    offset = 0
    while True:
        page = collection.get(include=include, limit=_PAGE, offset=offset)
        ids = page["ids"]
        if not ids:
            return
        docs = page.get("documents") or [""] * len(ids)
        metas = page.get("metadatas") or [{}] * len(ids)
        for chunk_id, doc, meta in zip(ids, docs, metas, strict=True):
            yield chunk_id, doc or "", dict(meta or {})
        offset += len(ids)


def rebuild_lexical(handle: IndexHandle) -> lexical.LexicalIndex:
    """Rebuild BM25 from what Chroma holds now."""
    ids, texts = [], []
    for chunk_id, doc, _ in iter_records(handle.collection):
        ids.append(chunk_id)
        texts.append(doc)
    digest = ids_digest(ids)
    index = lexical.build(ids, texts, digest, handle.lexical_folder())
    with _LEXICAL_LOCK:
        _LEXICAL[str(handle.lexical_folder())] = index
    log.info("BM25 index rebuilt over %d chunks", len(ids))
    return index


def synced_lexical(handle: IndexHandle) -> lexical.LexicalIndex:
    """The BM25 index matching the collection's current digest (loaded once, rebuilt if stale)."""
    key = str(handle.lexical_folder())
    # Fetch the metadata afresh: another process may have ingested since we opened the index.
    want = current_digest(handle.settings)
    with _LEXICAL_LOCK:
        cached = _LEXICAL.get(key)
    if cached is not None and cached.digest == want:
        return cached
    loaded = lexical.load(handle.lexical_folder())
    if loaded is not None and loaded.digest == want and want is not None:
        with _LEXICAL_LOCK:
            _LEXICAL[key] = loaded
        return loaded
    return rebuild_lexical(handle)


def reset_lexical_cache() -> None:
    with _LEXICAL_LOCK:
        _LEXICAL.clear()


def index_exists(settings: Settings | None = None) -> bool:
    """Whether the configured index has been built (without creating anything)."""
    s = settings or get_settings()
    if not s.uses_chroma_server and not (s.index_dir / "chroma").exists():
        return False
    with index_errors(s):
        return open_index(s) is not None


def paper_from_record(paper_id: str, abstract: str, meta: dict[str, Any]) -> Paper:
    """A Paper from its record in the papers collection."""
    from rag.ingest import RECORD_KEYS

    sources = tuple(str(meta.get("sources", "")).split(",")) if meta.get("sources") else ()
    extra = {k.removeprefix("meta_"): v for k, v in meta.items() if k not in RECORD_KEYS}
    return Paper(paper_id, str(meta.get("title")), abstract, sources, extra)


def indexed_papers(settings: Settings | None = None) -> list[Paper]:
    """The papers the index holds, in title order."""
    s = settings or get_settings()
    with index_errors(s):
        handle = open_index(s) if index_exists(s) else None
        if handle is None:
            return []
        papers = [paper_from_record(pid, doc, meta) for pid, doc, meta in iter_records(handle.papers)]
    return sorted(papers, key=lambda p: p.title.casefold())
