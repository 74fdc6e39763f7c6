"""An open index: the Chroma collection, its LangChain vector store and the BM25 index in sync."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chromadb.api.models.Collection import Collection
from langchain_core.embeddings import Embeddings

from rag import lexical
from rag.config import Settings, get_settings
from rag.embeddings import embedder_id, get_embedder
from rag.store import DIGEST_KEY, create_collection, find_collection, get_client, ids_digest, vector_store
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
    collection: Collection

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
    return IndexHandle(s, embedder, model_id, collection) if collection is not None else None


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
    fresh = get_client(handle.settings).get_collection(handle.settings.collection)
    want = (fresh.metadata or {}).get(DIGEST_KEY)
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
    return open_index(s) is not None


def indexed_papers(settings: Settings | None = None) -> list[Paper]:
    """The papers the index holds (one per paper, from its first chunk), in title order."""
    s = settings or get_settings()
    handle = open_index(s) if index_exists(s) else None
    if handle is None:
        return []
    papers: dict[str, Paper] = {}
    for _, _, meta in iter_records(handle.collection, include_documents=False):
        pid = str(meta.get("paper_id"))
        if pid not in papers or meta.get("chunk_index") == 0:
            sources = tuple(str(meta.get("sources", "")).split(",")) if meta.get("sources") else ()
            papers[pid] = Paper(pid, str(meta.get("title")), str(meta.get("abstract", "")), sources)
    return sorted(papers.values(), key=lambda p: p.title.casefold())
