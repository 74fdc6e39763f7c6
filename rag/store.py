"""The Chroma side of the index: one client per location, one collection guarded by its model id.

The collection's metadata records the embedding model and a digest of its
chunk ids. The model id turns "opened with another embedding model" into a
clear error instead of a dimension mismatch; the digest lets the BM25 index
(a separate file) tell cheaply whether it is in sync.

Each abstract is stored once, in a companion collection with one record per
paper (document: the abstract; vector: the mean of its chunk vectors), so a
long abstract costs space linear in its length, not its length times its
number of chunks.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import chromadb
import chromadb.errors
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings as ChromaSettings
from langchain_core.embeddings import Embeddings

if TYPE_CHECKING:
    from langchain_chroma import Chroma

from rag.config import Settings, get_settings

MODEL_KEY = "embedding_model"
DIGEST_KEY = "ids_digest"
LAYOUT_KEY = "layout"
LAYOUT = 2  # 2: abstracts in the papers collection, not in every chunk's metadata
PAPERS_SUFFIX = ".abstracts"


class RagIndexError(RuntimeError):
    """Base for index problems whose message says how to fix them."""


class IndexModelMismatch(RagIndexError):
    """The index was built with another embedding model than the configured one."""


class IndexUnavailable(RagIndexError):
    """The Chroma server cannot be reached or the index cannot be opened."""


class IndexWriteError(RagIndexError):
    """The index could not be written (read-only folder, full disk); what was completed is kept."""


_LOW_DISK_BYTES = 64 << 20


def _server_down(exc: BaseException) -> bool:
    import httpx

    text = str(exc).lower()
    return isinstance(exc, httpx.TransportError | ConnectionError) or "could not connect to tenant" in text


def index_failure(exc: BaseException, settings: Settings) -> RagIndexError | None:
    """A clear RagIndexError for what a Chroma, sqlite or file-system failure means, or None if unknown."""
    where = settings.index_location()
    text = str(exc)
    low = text.lower()
    if settings.uses_chroma_server and _server_down(exc):
        return IndexUnavailable(
            f"cannot reach the {where}; start it with `chroma run` or unset RAG_CHROMA_HOST to use the embedded index"
        )
    errno = getattr(exc, "errno", None)
    if "readonly database" in low or isinstance(exc, PermissionError) or errno in (30, 13):  # EROFS, EACCES
        return IndexWriteError(
            f"the index at {where} is read-only (Chroma needs write access even to search); "
            "make the folder writable, or set RAG_INDEX_DIR to a writable copy"
        )
    if "disk is full" in low or "no space left" in low or errno == 28 or ("compaction" in low and _disk_low(settings)):
        return IndexWriteError(
            f"the disk holding the index at {where} is full; free some space and run `rag ingest` again "
            "(it keeps what was written and resumes)"
        )
    if isinstance(exc, chromadb.errors.ChromaError):
        return RagIndexError(f"the index at {where} failed: {text.splitlines()[0] if text else type(exc).__name__}")
    return None


def _disk_low(settings: Settings) -> bool:
    import shutil

    try:
        return shutil.disk_usage(settings.index_dir).free < _LOW_DISK_BYTES
    except OSError:
        return False


@contextmanager
def index_errors(settings: Settings) -> Iterator[None]:
    """Re-raise index failures as a RagIndexError whose one-line message says what to do."""
    try:
        yield
    except RagIndexError:
        raise
    except Exception as exc:
        mapped = index_failure(exc, settings)
        if mapped is None:
            raise
        raise mapped from exc


_CLIENTS: dict[tuple[str, str | None, int | None], ClientAPI] = {}
_LOCK = threading.Lock()


def get_client(settings: Settings | None = None) -> ClientAPI:
    """Embedded PersistentClient under `index_dir`, or HttpClient when RAG_CHROMA_HOST is set."""
    s = settings or get_settings()
    key = (str(s.index_dir), s.chroma_host, s.chroma_port)
    with _LOCK:
        if key not in _CLIENTS:
            chroma_settings = ChromaSettings(anonymized_telemetry=False)
            if s.uses_chroma_server:
                try:
                    _CLIENTS[key] = chromadb.HttpClient(
                        host=s.chroma_host or "localhost", port=s.chroma_port or 8000, settings=chroma_settings
                    )
                except Exception as exc:  # chromadb raises several kinds here
                    raise IndexUnavailable(
                        f"cannot reach the {s.index_location()} ({exc}); "
                        "start it with `chroma run` or unset RAG_CHROMA_HOST to use the embedded index"
                    ) from exc
            else:
                with index_errors(s):
                    s.index_dir.mkdir(parents=True, exist_ok=True)
                    _CLIENTS[key] = chromadb.PersistentClient(
                        path=str(s.index_dir / "chroma"), settings=chroma_settings
                    )
        return _CLIENTS[key]


def reopen_client(settings: Settings) -> None:
    """Forget this process's client for the location, so the next use reads the index afresh.

    Embedded Chroma keeps its vector index in memory and does not see what another
    process wrote; a new client loads it again. The old one is left to the threads
    still holding it (stopping it under them would break their queries).
    """
    key = (str(settings.index_dir), settings.chroma_host, settings.chroma_port)
    with _LOCK:
        _CLIENTS.pop(key, None)
        if not settings.uses_chroma_server:
            from chromadb.api.shared_system_client import SharedSystemClient

            SharedSystemClient._identifier_to_system.pop(str(settings.index_dir / "chroma"), None)


def current_digest(settings: Settings) -> str | None:
    """The chunk-id digest the collection holds now (written by the last completed ingest, in any process)."""
    meta = get_client(settings).get_collection(settings.collection).metadata or {}
    digest = meta.get(DIGEST_KEY)
    return None if digest is None else str(digest)


def reset_clients() -> None:
    with _LOCK:
        _CLIENTS.clear()


def ids_digest(ids: Iterable[str]) -> str:
    """Order-free digest of a set of chunk ids."""
    digest = hashlib.sha256()
    for chunk_id in sorted(ids):
        digest.update(chunk_id.encode())
        digest.update(b"\n")
    return digest.hexdigest()[:32]


def find_collection(settings: Settings, model_id: str) -> Collection | None:
    """The existing collection (None if there is none), checked against `model_id`."""
    client = get_client(settings)
    try:
        collection = client.get_collection(settings.collection)
    except chromadb.errors.NotFoundError:
        return None
    except Exception as exc:
        if "does not exist" in str(exc):
            return None
        raise IndexUnavailable(f"cannot open the index at {settings.index_location()}: {exc}") from exc
    built_with = (collection.metadata or {}).get(MODEL_KEY)
    if built_with != model_id:
        raise IndexModelMismatch(
            f"the index at {settings.index_location()} was built with embedding model {built_with!r}, "
            f"but RAG_EMBEDDING_MODEL is {model_id!r}; run `rag ingest --rebuild` to re-embed it "
            "(or set RAG_EMBEDDING_MODEL back)"
        )
    return collection


def create_collection(settings: Settings, model_id: str) -> Collection:
    """The collection, created with its model id and cosine space when missing (checked when present)."""
    existing = find_collection(settings, model_id)
    if existing is not None:
        return existing
    return get_client(settings).get_or_create_collection(
        settings.collection, metadata={MODEL_KEY: model_id, LAYOUT_KEY: LAYOUT, "hnsw:space": "cosine"}
    )


def papers_collection(settings: Settings) -> Collection:
    """The companion collection with one record per paper (its abstract and paper-level metadata)."""
    return get_client(settings).get_or_create_collection(
        settings.collection + PAPERS_SUFFIX, metadata={"hnsw:space": "cosine"}
    )


def layout_of(collection: Collection) -> int:
    return int((collection.metadata or {}).get(LAYOUT_KEY, 1))


def vector_store(settings: Settings, embedder: Embeddings, model_id: str) -> Chroma:
    """LangChain's Chroma over our (existing) collection."""
    from langchain_chroma import Chroma  # here: ingest works on the raw collection and never needs it

    return Chroma(
        client=get_client(settings),
        collection_name=settings.collection,
        embedding_function=embedder,
        collection_metadata={MODEL_KEY: model_id, "hnsw:space": "cosine"},
    )


def drop_collection(settings: Settings) -> None:
    """Delete the chunks and the papers collections (those that exist)."""
    client = get_client(settings)
    for name in (settings.collection, settings.collection + PAPERS_SUFFIX):
        try:
            client.delete_collection(name)
        except Exception as exc:
            if "does not exist" not in str(exc) and not isinstance(exc, chromadb.errors.NotFoundError):
                raise


def stamp_digest(collection: Collection, model_id: str, digest: str) -> None:
    """Record the chunk-id digest after a completed ingest (the BM25 sync check reads it)."""
    meta = dict(collection.metadata or {})
    meta.pop("hnsw:space", None)  # fixed at creation; Chroma refuses to modify it
    meta.update({MODEL_KEY: model_id, DIGEST_KEY: digest, LAYOUT_KEY: LAYOUT})
    collection.modify(metadata=meta)
