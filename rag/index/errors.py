"""Index failures as exceptions whose one-line message says what to do (read-only, full disk, server down)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import chromadb.errors

from rag.config import Settings


class RagIndexError(RuntimeError):
    """Base for index problems whose message says how to fix them."""


class IndexMissing(RagIndexError):
    """There is no index at the configured location yet."""


class IndexModelMismatch(RagIndexError):
    """The index was built with another embedding model than the configured one."""


class IndexUnavailable(RagIndexError):
    """The Chroma server cannot be reached or the index cannot be opened."""


class IndexWriteError(RagIndexError):
    """The index could not be written (read-only folder, full disk); what was completed is kept."""


class EmbeddingServerError(RagIndexError):
    """The embedding server (RAG_EMBEDDING_BASE_URL) failed or answered wrongly; the message names it."""


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
