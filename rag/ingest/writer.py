"""The embed-and-write stage of an ingest: chunks embedded in this thread while a writer thread upserts the
previous batch (onnxruntime and Chroma release the GIL), with at most two batches waiting, so memory stays
bounded however large the input. A paper's record is written before its chunks.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from chromadb.api.models.Collection import Collection

from rag.index.embedder import SpanEmbedder
from rag.index.paper_index import Collections, PaperIndex
from rag.index.records import chunk_metadata, encode_vectors, paper_metadata
from rag.text import sentence_spans
from rag.types import Chunk, MetaValue, Paper

_EMBED_STEP = 64  # chunks embedded per step (whole papers; a long paper is one step)
_EMBEDDED_WRITE = 64  # records per upsert into the embedded index (one embedding step: the writer overlaps the next)
_SERVER_WRITE = 1000  # records per upsert into a Chroma server (fewer round trips), within its max batch size
_IN_FLIGHT = 2  # write batches waiting for the writer thread at most
_DELETE_BATCH = 1000


def _embed(index: PaperIndex, chunks: list[Chunk]) -> tuple[np.ndarray, list[tuple[list[tuple[int, int]], str | None]]]:
    """Chunk vectors and, per chunk, its sentence spans and (when the embedder can make them) their vectors."""
    texts = [c.text for c in chunks]
    spans = [sentence_spans(c.text, c.text.index("\n") + 1) for c in chunks]  # after the title line
    embedder = index.embedder
    if isinstance(embedder, SpanEmbedder):
        vectors, sentence_vectors = embedder.embed_with_spans(texts, spans)
        return vectors, [(sp, encode_vectors(sv)) for sp, sv in zip(spans, sentence_vectors, strict=True)]
    vectors = np.array(embedder.embed_documents(texts), dtype=np.float32)
    return vectors, [(sp, None) for sp in spans]


def replacing(new: dict[str, MetaValue], old: dict[str, Any] | None) -> dict[str, MetaValue | None]:
    """`new`, plus None for each key only the old record has: Chroma merges metadata, None deletes a key."""
    return {**dict.fromkeys(old or {}), **new}


@dataclass
class _Writes:
    """Records ready for Chroma: paper records first, then their chunks (see `_write`)."""

    paper_ids: list[str] = field(default_factory=list)
    paper_vectors: list[np.ndarray] = field(default_factory=list)
    abstracts: list[str] = field(default_factory=list)
    paper_metas: list[dict[str, MetaValue | None]] = field(default_factory=list)
    chunk_ids: list[str] = field(default_factory=list)
    chunk_vectors: list[np.ndarray] = field(default_factory=list)
    chunk_texts: list[str] = field(default_factory=list)
    chunk_metas: list[dict[str, MetaValue | list[str]]] = field(default_factory=list)


def _prepare(
    index: PaperIndex,
    group: list[tuple[Paper, list[Chunk], str]],
    old_records: dict[str, dict[str, Any]],
    into: _Writes,
) -> None:
    """Embed the chunks of whole papers and add their records to `into`."""
    chunks = [c for _, paper_chunks, _ in group for c in paper_chunks]
    vectors, extras = _embed(index, chunks)
    offset = 0
    for paper, paper_chunks, p_hash in group:
        own = vectors[offset : offset + len(paper_chunks)]
        mean = own.mean(axis=0)
        into.paper_ids.append(paper.paper_id)
        into.paper_vectors.append(mean / (np.linalg.norm(mean) or 1.0))
        into.abstracts.append(paper.abstract)
        into.paper_metas.append(
            replacing(paper_metadata(paper, len(paper_chunks), p_hash), old_records.pop(paper.paper_id, None))
        )
        for chunk, vector, (spans, vecs) in zip(
            paper_chunks, own, extras[offset : offset + len(paper_chunks)], strict=True
        ):
            meta = dataclasses.replace(
                chunk_metadata(paper, chunk, len(paper_chunks), p_hash), sent_spans=tuple(spans), sent_vecs=vecs
            )
            into.chunk_ids.append(chunk.chunk_id)
            into.chunk_vectors.append(vector)
            into.chunk_texts.append(chunk.text)
            into.chunk_metas.append(meta.encode())
        offset += len(paper_chunks)


def _write(opened: Collections, writes: _Writes, batch: int) -> None:
    """Each paper's record, then its chunks, in upserts of at most `batch` records.

    Record first: a reader that finds a chunk always finds its abstract, and an
    interrupted run leaves at worst a record whose chunks the next run adds.
    """
    _upsert(opened.papers, writes.paper_ids, writes.paper_vectors, writes.abstracts, writes.paper_metas, batch)
    _upsert(opened.chunks, writes.chunk_ids, writes.chunk_vectors, writes.chunk_texts, writes.chunk_metas, batch)


def _upsert(
    collection: Collection, ids: list[str], vectors: list[np.ndarray], docs: list[str], metas: list[Any], batch: int
) -> None:
    for i in range(0, len(ids), batch):
        part = slice(i, i + batch)
        embeddings = np.array(vectors[part])
        collection.upsert(ids=ids[part], embeddings=embeddings, documents=docs[part], metadatas=metas[part])


def _write_batch(index: PaperIndex) -> int:
    """Records per upsert: large for a server (fewer round trips), within what it accepts."""
    if not index.settings.uses_chroma_server:
        return _EMBEDDED_WRITE
    try:
        return max(1, min(index.client.get_max_batch_size(), _SERVER_WRITE))
    except Exception:  # an older server without the endpoint
        return _EMBEDDED_WRITE


def embed_and_write(
    index: PaperIndex,
    opened: Collections,
    to_embed: Iterable[tuple[Paper, list[Chunk], str]],
    records: dict[str, dict[str, Any]],
    written: Callable[[int], object] = lambda papers: None,
) -> None:
    """Embed in this thread while a writer thread upserts the previous batch (ONNX and Chroma release the GIL).

    `to_embed` is consumed as it goes and at most `_IN_FLIGHT` batches wait for the writer, so memory
    stays bounded however large the input. `records`: the old records of papers re-embedded (keys to clear);
    `written` is told how many papers each finished write stored.
    """
    batch = _write_batch(index)
    in_flight: deque[tuple[Future[None], int]] = deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="chroma-writer") as writer:

        def wait_one() -> None:
            done, papers = in_flight.popleft()
            done.result()  # re-raises a write's failure here
            written(papers)

        def submit(writes: _Writes) -> None:
            while len(in_flight) >= _IN_FLIGHT:
                wait_one()
            in_flight.append((writer.submit(_write, opened, writes, batch), len(writes.paper_ids)))

        try:
            writes, group, in_group = _Writes(), [], 0
            for item in to_embed:
                group.append(item)
                in_group += len(item[1])
                if in_group >= _EMBED_STEP:
                    _prepare(index, group, records, writes)
                    group, in_group = [], 0
                    if len(writes.chunk_ids) >= batch:
                        submit(writes)
                        writes = _Writes()
            if group:
                _prepare(index, group, records, writes)
            if writes.chunk_ids:
                submit(writes)
            while in_flight:
                wait_one()
        finally:
            for pending, _ in in_flight:
                pending.cancel()


def delete(collection: Any, ids: Sequence[str]) -> None:
    for i in range(0, len(ids), _DELETE_BATCH):
        collection.delete(ids=list(ids[i : i + _DELETE_BATCH]))
