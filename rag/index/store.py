"""The Chroma side of the index: clients, the two collections, the model id, layout and digest.

The chunks collection's metadata records the embedding model, the record
layout and a digest of its chunk ids. The model id turns "opened with another
embedding model" into a clear error instead of a dimension mismatch, unless a
probe vector shows the other model's vectors agree (rag.index.probe); the
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
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import chromadb
import chromadb.errors
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.api.types import GetResult, Where
from chromadb.config import Settings as ChromaSettings

from rag.config import Settings
from rag.index.errors import IndexUnavailable, index_errors, index_failure
from rag.index.probe import ensure_agreement, probe_metadata

if TYPE_CHECKING:
    from rag.index.embedder import Embedder

MODEL_KEY = "embedding_model"
SPACE_KEY = "hnsw:space"  # the distance Chroma uses, fixed when a collection is created
DIGEST_KEY = "ids_digest"
UPDATED_KEY = "updated_at"
LAYOUT_KEY = "layout"
LAYOUT = 4  # 2: abstracts in the papers collection, not in every chunk's metadata; 3: additive digest;
# 4: filter fields (year, authors, sources, categories) on every chunk
PAPERS_SUFFIX = ".abstracts"
PAGE = 5000
WRITING_KEY = "writing"  # set while an ingest writes; a digest left by an interrupted one is recomputed
_MOD = 1 << 128


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


def _id_hash(chunk_id: str) -> int:
    return int.from_bytes(hashlib.sha256(chunk_id.encode()).digest()[:16], "big")


def ids_digest(ids: Iterable[str]) -> str:
    """Order-free digest of a set of chunk ids: the sum of their hashes modulo 2**128.

    A sum, not a hash of the sorted ids, so that an ingest updates it from the ids it
    adds and removes (`updated_digest`) without reading the other million.
    """
    return f"{sum(map(_id_hash, ids)) % _MOD:032x}"


def updated_digest(digest: str, added: Iterable[str], removed: Iterable[str]) -> str:
    """The digest of a set after adding `added` (not in it) and removing `removed` (in it)."""
    total = int(digest, 16) + sum(map(_id_hash, added)) - sum(map(_id_hash, removed))
    return f"{total % _MOD:032x}"


def pages(collection: Collection, include: list[Any], where: Where | None = None) -> Iterator[GetResult]:
    """Every record of `collection` (that `where` admits), PAGE at a time (bounded memory and request size). The
    one place that walks a whole collection: `include=[]` reads ids only."""
    offset = 0
    while True:
        page = collection.get(where=where, include=include, limit=PAGE, offset=offset)
        if not page["ids"]:
            return
        yield page
        offset += len(page["ids"])


def collection_digest(collection: Collection) -> str:
    """The digest computed from the ids the collection holds (paged: ids only, constant memory)."""
    total = sum(_id_hash(i) for page in pages(collection, []) for i in page["ids"])
    return f"{total % _MOD:032x}"


def digest_of(collection: Collection) -> str | None:
    digest = (collection.metadata or {}).get(DIGEST_KEY)
    return None if digest is None else str(digest)


def existing(client: ClientAPI, settings: Settings, name: str) -> Collection | None:
    """The collection `name` if it exists (no model check, nothing created), else None."""
    try:
        return client.get_collection(name)
    except chromadb.errors.NotFoundError:
        return None
    except Exception as exc:
        if "does not exist" in str(exc):
            return None
        mapped = index_failure(exc, settings)  # a server that is down, a read-only folder, ...
        raise mapped or IndexUnavailable(f"cannot open the index at {settings.index_location()}: {exc}") from exc


def find_collection(
    client: ClientAPI, settings: Settings, model_id: str, embedder: Embedder | None = None
) -> Collection | None:
    """The existing chunks collection (None if there is none), checked against `model_id`.

    Built with another model id, it is used only if `embedder` (the one named `model_id`; made from
    `settings` when not given) agrees with the index's model on the probe sentence (rag.index.probe);
    it keeps recording its own model id (`recorded_model`).
    """
    collection = existing(client, settings, settings.collection)
    if collection is None:
        return None
    meta = collection.metadata or {}
    built_with = meta.get(MODEL_KEY)
    if built_with != model_id:
        ensure_agreement(meta, built_with, settings, model_id, embedder)  # IndexModelMismatch if they disagree
    return collection


def create_collection(
    client: ClientAPI, settings: Settings, model_id: str, embedder: Embedder | None = None
) -> Collection:
    """The chunks collection, created with its model id, probe vector and cosine space when missing.

    An existing one is checked as by `find_collection`.
    """
    existing = find_collection(client, settings, model_id, embedder)
    if existing is not None:
        return existing
    metadata = {MODEL_KEY: model_id, LAYOUT_KEY: LAYOUT, SPACE_KEY: "cosine"}
    return client.get_or_create_collection(
        settings.collection, metadata={**metadata, **probe_metadata(settings, model_id, embedder)}
    )


def recorded_model(collection: Collection) -> str | None:
    """The embedding model the index records: stamp this one, not the embedder's name (see find_collection)."""
    model = (collection.metadata or {}).get(MODEL_KEY)
    return None if model is None else str(model)


def papers_collection(client: ClientAPI, settings: Settings) -> Collection:
    """The companion collection with one record per paper (its abstract and paper-level metadata)."""
    return client.get_or_create_collection(settings.collection + PAPERS_SUFFIX, metadata={SPACE_KEY: "cosine"})


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


def modifiable(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """A collection's metadata as `Collection.modify` takes it: the distance space is fixed at creation, and Chroma
    refuses a modification that names it."""
    meta: dict[str, Any] = dict(metadata or {})
    meta.pop(SPACE_KEY, None)
    return meta


def stamp(collection: Collection, model_id: str, digest: str) -> None:
    """Record the chunk-id digest (and current layout) after a completed ingest; clears the writing mark."""
    meta = modifiable(collection.metadata)
    meta.update({MODEL_KEY: model_id, DIGEST_KEY: digest, LAYOUT_KEY: LAYOUT, UPDATED_KEY: time.time()})
    meta[WRITING_KEY] = False
    collection.modify(metadata=meta)


def mark_writing(collection: Collection) -> None:
    """Say an ingest is writing: until `stamp`, the recorded digest may not match the records."""
    meta = modifiable(collection.metadata)
    if meta.get(WRITING_KEY):
        return
    meta[WRITING_KEY] = True
    collection.modify(metadata=meta)


def interrupted(collection: Collection) -> bool:
    """Whether an ingest began writing and never stamped (its digest must be recomputed)."""
    return bool((collection.metadata or {}).get(WRITING_KEY))


def updated_at(collection: Collection) -> float | None:
    """When the last ingest or removal finished (seconds since the epoch), if recorded."""
    value = (collection.metadata or {}).get(UPDATED_KEY)
    return float(value) if isinstance(value, int | float) else None


def iter_records(collection: Collection, include_documents: bool = True) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(id, document, metadata) of every record, fetched page by page (bounded memory and request size)."""
    include: list[Any] = ["metadatas", "documents"] if include_documents else ["metadatas"]
    for page in pages(collection, include):
        ids = page["ids"]
        docs = page.get("documents") or [""] * len(ids)
        metas = page.get("metadatas") or [{}] * len(ids)
        for record_id, doc, meta in zip(ids, docs, metas, strict=True):
            yield record_id, doc or "", dict(meta or {})
