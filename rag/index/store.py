"""The Chroma side of the index: clients, the two collections, the model id, layout and digest.

The chunks collection's metadata records the embedding model, the record
layout and a digest of its chunk ids. The model id turns "opened with another
embedding model" into a clear error instead of a dimension mismatch; the
digest tells the BM25 index (a separate file) and other processes whether
they are in sync.

Each abstract is stored once, in a companion collection with one record per
paper (document: the abstract; vector: the mean of its chunk vectors), so a
long abstract costs space linear in its length, not its length times its
number of chunks. Everything here talks to the Chroma client directly: the
index needs raw vectors, paging and exact metadata, which LangChain's vector
store would only wrap.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator
from typing import Any

import chromadb
import chromadb.errors
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings as ChromaSettings

from rag.config import Settings
from rag.index.errors import IndexModelMismatch, IndexUnavailable, index_errors, index_failure

MODEL_KEY = "embedding_model"
DIGEST_KEY = "ids_digest"
UPDATED_KEY = "updated_at"
LAYOUT_KEY = "layout"
LAYOUT = 2  # 2: abstracts in the papers collection, not in every chunk's metadata
PAPERS_SUFFIX = ".abstracts"
PAGE = 5000


def connect(settings: Settings) -> ClientAPI:
    """Embedded PersistentClient under `index_dir`, or HttpClient when RAG_CHROMA_HOST is set."""
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.uses_chroma_server:
        try:
            return chromadb.HttpClient(
                host=settings.chroma_host or "localhost", port=settings.chroma_port or 8000, settings=chroma_settings
            )
        except Exception as exc:  # chromadb raises several kinds here
            raise IndexUnavailable(
                f"cannot reach the {settings.index_location()} ({exc}); "
                "start it with `chroma run` or unset RAG_CHROMA_HOST to use the embedded index"
            ) from exc
    with index_errors(settings):
        settings.index_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.index_dir / "chroma"), settings=chroma_settings)


def forget_embedded_system(settings: Settings) -> None:
    """Make the next embedded client of this folder load it afresh (see PaperIndex.reload).

    chromadb shares one in-memory system per folder within a process; the old one is
    left to the threads still holding it (stopping it under them would break their queries).
    """
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient._identifier_to_system.pop(str(settings.index_dir / "chroma"), None)


def ids_digest(ids: Iterable[str]) -> str:
    """Order-free digest of a set of chunk ids."""
    digest = hashlib.sha256()
    for chunk_id in sorted(ids):
        digest.update(chunk_id.encode())
        digest.update(b"\n")
    return digest.hexdigest()[:32]


def digest_of(collection: Collection) -> str | None:
    digest = (collection.metadata or {}).get(DIGEST_KEY)
    return None if digest is None else str(digest)


def find_collection(client: ClientAPI, settings: Settings, model_id: str) -> Collection | None:
    """The existing chunks collection (None if there is none), checked against `model_id`."""
    try:
        collection = client.get_collection(settings.collection)
    except chromadb.errors.NotFoundError:
        return None
    except Exception as exc:
        if "does not exist" in str(exc):
            return None
        mapped = index_failure(exc, settings)  # a server that is down, a read-only folder, ...
        raise mapped or IndexUnavailable(f"cannot open the index at {settings.index_location()}: {exc}") from exc
    built_with = (collection.metadata or {}).get(MODEL_KEY)
    if built_with != model_id:
        raise IndexModelMismatch(
            f"the index at {settings.index_location()} was built with embedding model {built_with!r}, "
            f"but RAG_EMBEDDING_MODEL is {model_id!r}; run `rag ingest --rebuild` to re-embed it "
            "(or set RAG_EMBEDDING_MODEL back)"
        )
    return collection


def create_collection(client: ClientAPI, settings: Settings, model_id: str) -> Collection:
    """The chunks collection, created with its model id and cosine space when missing (checked when present)."""
    existing = find_collection(client, settings, model_id)
    if existing is not None:
        return existing
    return client.get_or_create_collection(
        settings.collection, metadata={MODEL_KEY: model_id, LAYOUT_KEY: LAYOUT, "hnsw:space": "cosine"}
    )


def papers_collection(client: ClientAPI, settings: Settings) -> Collection:
    """The companion collection with one record per paper (its abstract and paper-level metadata)."""
    return client.get_or_create_collection(settings.collection + PAPERS_SUFFIX, metadata={"hnsw:space": "cosine"})


def layout_of(collection: Collection) -> int:
    return int((collection.metadata or {}).get(LAYOUT_KEY, 1))


def drop_collections(client: ClientAPI, settings: Settings) -> None:
    """Delete the chunks and the papers collections (those that exist)."""
    for name in (settings.collection, settings.collection + PAPERS_SUFFIX):
        try:
            client.delete_collection(name)
        except Exception as exc:
            if "does not exist" not in str(exc) and not isinstance(exc, chromadb.errors.NotFoundError):
                raise


def stamp(collection: Collection, model_id: str, digest: str) -> None:
    """Record the chunk-id digest (and current layout) after a completed ingest."""
    meta = dict(collection.metadata or {})
    meta.pop("hnsw:space", None)  # fixed at creation; Chroma refuses to modify it
    meta.update({MODEL_KEY: model_id, DIGEST_KEY: digest, LAYOUT_KEY: LAYOUT, UPDATED_KEY: time.time()})
    collection.modify(metadata=meta)


def updated_at(collection: Collection) -> float | None:
    """When the last ingest or removal finished (seconds since the epoch), if recorded."""
    value = (collection.metadata or {}).get(UPDATED_KEY)
    return float(value) if isinstance(value, int | float) else None


def iter_records(collection: Collection, include_documents: bool = True) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(id, document, metadata) of every record, fetched page by page (bounded memory and request size)."""
    include: list[Any] = ["metadatas", "documents"] if include_documents else ["metadatas"]
    offset = 0
    while True:
        page = collection.get(include=include, limit=PAGE, offset=offset)
        ids = page["ids"]
        if not ids:
            return
        docs = page.get("documents") or [""] * len(ids)
        metas = page.get("metadatas") or [{}] * len(ids)
        for record_id, doc, meta in zip(ids, docs, metas, strict=True):
            yield record_id, doc or "", dict(meta or {})
        offset += len(ids)
