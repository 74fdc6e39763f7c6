"""The index's record schema: what it stores per chunk and per paper, as typed records with their encoding to
Chroma metadata and back. The one module that names a record's metadata keys (the collections' own metadata
is store.py's); code elsewhere reads `ChunkMeta` and `PaperMeta`.

A chunk record carries its text (the document), vector, paper id and title, position, the paper's content
hash, and its sentences' spans and late-chunked vectors (float16, base64). A paper record carries the abstract
(the document), title, source files (a JSON list; older indexes joined them with commas, which a file name may
hold) and the metadata its files gave. The first layout (1) kept the abstract in every chunk; `upgrade_layout`
moves it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from chromadb.api.models.Collection import Collection
from chromadb.api.types import UpdateMetadata, Where

from rag.index.filters import FILTER_KEYS, filter_fields
from rag.index.store import DIGEST_KEY, LAYOUT, LAYOUT_KEY, collection_digest, layout_of, modifiable, pages
from rag.types import Chunk, MetaValue, Paper

log = logging.getLogger(__name__)

# Names our records use; a paper's own metadata field of the same name is stored as meta_<name>.
PAPER_ID, TITLE, CHUNK_INDEX, N_CHUNKS, PAPER_HASH = "paper_id", "title", "chunk_index", "n_chunks", "paper_hash"
SOURCES, RECORD_HASH, SENT_SPANS, SENT_VECS = "sources", "record_hash", "sent_spans", "sent_vecs"
RESERVED = frozenset({PAPER_ID, TITLE, "abstract", CHUNK_INDEX, N_CHUNKS, PAPER_HASH, SOURCES})
RECORD_KEYS = frozenset({TITLE, SOURCES, PAPER_HASH, RECORD_HASH, N_CHUNKS})


@dataclass(frozen=True)
class ChunkMeta:
    """A chunk record's metadata, decoded."""

    paper_id: str
    title: str
    chunk_index: int = 0
    n_chunks: int = 0
    paper_hash: str = ""
    sent_spans: tuple[tuple[int, int], ...] | None = None  # sentence spans in the chunk's text
    sent_vecs: str | None = None  # their vectors, encoded (see `sentence_vectors`)
    filters: dict[str, int | list[str]] = field(default_factory=dict)  # the paper's, for `where` (filters.py)

    @classmethod
    def decode(cls, meta: Mapping[str, Any]) -> ChunkMeta:
        spans = meta.get(SENT_SPANS)
        return cls(
            str(meta.get(PAPER_ID, "")),
            str(meta.get(TITLE, "")),
            int(str(meta.get(CHUNK_INDEX, 0))),
            int(str(meta.get(N_CHUNKS, 0))),
            str(meta.get(PAPER_HASH, "")),
            tuple((int(a), int(b)) for a, b in json.loads(str(spans))) if spans is not None else None,
            str(meta[SENT_VECS]) if meta.get(SENT_VECS) is not None else None,
        )

    def encode(self) -> dict[str, MetaValue | list[str]]:
        meta: dict[str, MetaValue | list[str]] = {
            **self.filters,
            PAPER_ID: self.paper_id,
            TITLE: self.title,
            CHUNK_INDEX: self.chunk_index,
            N_CHUNKS: self.n_chunks,
            PAPER_HASH: self.paper_hash,
        }
        if self.sent_spans is not None:
            meta[SENT_SPANS] = json.dumps([list(span) for span in self.sent_spans])
        if self.sent_vecs is not None:
            meta[SENT_VECS] = self.sent_vecs
        return meta

    def sentence_vectors(self) -> np.ndarray | None:
        """One vector per sentence span (None when the chunk has none: an embedder that cannot make them)."""
        if self.sent_spans is None or self.sent_vecs is None:
            return None
        return decode_vectors(self.sent_vecs, len(self.sent_spans))


@dataclass(frozen=True)
class PaperMeta:
    """A paper record's metadata, decoded (the abstract is the record's document)."""

    title: str
    sources: tuple[str, ...] = ()
    paper_hash: str = ""
    record_hash: str = ""
    n_chunks: int = -1
    metadata: dict[str, MetaValue] = field(default_factory=dict)

    @classmethod
    def decode(cls, meta: Mapping[str, Any]) -> PaperMeta:
        raw = meta.get(SOURCES)
        if not raw:
            sources: tuple[str, ...] = ()
        elif str(raw).startswith("["):
            sources = tuple(str(x) for x in json.loads(str(raw)))
        else:  # written before sources were a JSON list
            sources = tuple(str(raw).split(","))
        extra = {k.removeprefix("meta_"): v for k, v in meta.items() if k not in RECORD_KEYS}
        return cls(
            str(meta.get(TITLE)),
            sources,
            str(meta.get(PAPER_HASH, "")),
            str(meta.get(RECORD_HASH, "")),
            int(str(meta.get(N_CHUNKS, -1))),
            extra,
        )


def where_papers(paper_ids: Sequence[str]) -> Where:
    """A Chroma filter for the chunks of these papers."""
    return cast(Where, {PAPER_ID: {"$in": list(paper_ids)}})


def encode_vectors(vectors: np.ndarray) -> str:
    """Compact text form of sentence vectors for Chroma metadata (float16, base64)."""
    return base64.b64encode(vectors.astype(np.float16).tobytes()).decode("ascii")


def decode_vectors(text: str, count: int) -> np.ndarray:
    """The `count` vectors `encode_vectors` wrote (their dimension is whatever the model's was)."""
    raw = np.frombuffer(base64.b64decode(text), dtype=np.float16)
    return raw.astype(np.float32).reshape(count, -1) if count else raw.astype(np.float32).reshape(0, 0)


def record_hash(paper: Paper, p_hash: str) -> str:
    """Everything in a paper's record; a change rewrites the record (and re-embeds nothing)."""
    key = json.dumps([p_hash, list(paper.sources), sorted(paper.metadata.items())], default=str)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def chunk_metadata(paper: Paper, chunk: Chunk, n_chunks: int, p_hash: str) -> ChunkMeta:
    """What each chunk carries: enough to rank and group it, never the whole abstract."""
    return ChunkMeta(paper.paper_id, paper.title, chunk.index, n_chunks, p_hash, filters=filter_fields(paper))


def paper_metadata(paper: Paper, n_chunks: int, p_hash: str) -> dict[str, MetaValue]:
    """The paper's record: title, sources and the metadata its files gave (the abstract is the document)."""
    meta: dict[str, MetaValue] = {
        TITLE: paper.title,
        SOURCES: json.dumps(list(paper.sources), ensure_ascii=False),
        PAPER_HASH: p_hash,
        RECORD_HASH: record_hash(paper, p_hash),
        N_CHUNKS: n_chunks,
    }
    for key, value in paper.metadata.items():
        meta[f"meta_{key}" if key in RESERVED | RECORD_KEYS else key] = value
    return meta


def paper_from_record(paper_id: str, abstract: str, meta: Mapping[str, Any]) -> Paper:
    """A Paper from its record in the papers collection."""
    record = PaperMeta.decode(meta)
    return Paper(paper_id, record.title, abstract, record.sources, record.metadata)


_LAYOUT1_KEYS = RESERVED | {SENT_SPANS, SENT_VECS}
_CHUNK_KEYS = {PAPER_ID, TITLE, CHUNK_INDEX, N_CHUNKS, PAPER_HASH, SENT_SPANS, SENT_VECS}
_MOVED = {"abstract", SOURCES}


def upgrade_layout(chunks: Collection, papers: Collection, location: str) -> None:
    """Bring an older index to the current layout; nothing is re-embedded.

    Layout 1 kept each abstract in every chunk's metadata: it moves into one record per paper.
    Layouts 1 and 2 had a hash of the sorted ids as digest: it becomes the additive one.
    Layouts before 4 had no filter fields on chunks: each chunk gets its paper's.
    """
    if layout_of(chunks) < 2:
        _move_abstracts(chunks, papers, location)
    if layout_of(chunks) < 4:
        _add_filter_fields(chunks, papers, location)
    meta = modifiable(chunks.metadata)
    if meta.get(DIGEST_KEY) is not None:
        meta[DIGEST_KEY] = collection_digest(chunks)
    meta[LAYOUT_KEY] = LAYOUT
    chunks.modify(metadata=meta)


def _move_abstracts(chunks: Collection, papers: Collection, location: str) -> None:
    log.warning("upgrading the index at %s to store each abstract once (one-time)", location)
    firsts: dict[str, dict[str, Any]] = {}
    sums: dict[str, np.ndarray] = {}
    for page in pages(chunks, ["metadatas", "embeddings"]):
        embeddings = page["embeddings"] if page["embeddings"] is not None else []
        for meta, vector in zip(page["metadatas"] or [], embeddings, strict=True):
            pid = str(meta[PAPER_ID])
            sums[pid] = sums.get(pid, 0) + np.asarray(vector, dtype=np.float32)
            if meta.get(CHUNK_INDEX) == 0 or pid not in firsts:
                firsts[pid] = dict(meta)
    pids = list(firsts)
    for i in range(0, len(pids), 1000):
        batch = pids[i : i + 1000]
        found = [_paper_from_layout1(pid, firsts[pid]) for pid in batch]
        vectors = [sums[pid] / (np.linalg.norm(sums[pid]) or 1.0) for pid in batch]
        metas: list[Mapping[str, Any]] = [
            paper_metadata(p, int(firsts[p.paper_id][N_CHUNKS]), str(firsts[p.paper_id][PAPER_HASH])) for p in found
        ]
        papers.upsert(ids=batch, embeddings=np.array(vectors), documents=[p.abstract for p in found], metadatas=metas)
    # Chroma merges metadata on update: None removes the keys the paper records now hold.
    stale_keys = {pid: {k: None for k in meta if k in _MOVED or k not in _CHUNK_KEYS} for pid, meta in firsts.items()}
    for page in pages(chunks, ["metadatas"]):  # updating metadata leaves the records and their order as they are
        removals = [stale_keys[str(m[PAPER_ID])] for m in page["metadatas"] or []]
        chunks.update(ids=page["ids"], metadatas=removals)  # type: ignore[arg-type]


def refiltered(paper: Paper) -> UpdateMetadata:
    """A chunk's metadata update giving it `paper`'s filter fields (None removes one the paper no longer has)."""
    update: dict[str, Any] = {**dict.fromkeys(FILTER_KEYS), **filter_fields(paper)}
    return update


def _add_filter_fields(chunks: Collection, papers: Collection, location: str) -> None:
    log.warning("upgrading the index at %s: adding filter fields to its chunks (one-time)", location)
    fields: dict[str, UpdateMetadata] = {}
    for page in pages(papers, ["metadatas", "documents"]):
        for pid, doc, meta in zip(page["ids"], page["documents"] or [], page["metadatas"] or [], strict=True):
            fields[pid] = refiltered(paper_from_record(pid, doc or "", meta))
    for page in pages(chunks, ["metadatas"]):  # updating metadata leaves the records and their order as they are
        metas = [fields.get(str(m[PAPER_ID]), {}) for m in page["metadatas"] or []]
        chunks.update(ids=page["ids"], metadatas=metas)


def _paper_from_layout1(pid: str, meta: dict[str, Any]) -> Paper:
    sources = PaperMeta.decode({SOURCES: meta.get(SOURCES)}).sources
    extra = {k: v for k, v in meta.items() if k not in _LAYOUT1_KEYS}
    return Paper(pid, str(meta.get(TITLE)), str(meta.get("abstract", "")), sources, extra)
