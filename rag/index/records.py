"""What the index stores per chunk and per paper, and the compact codec for sentence vectors.

A chunk record carries its text (the document), vector, paper id and title, position,
the paper's content hash, and its sentences' spans and late-chunked vectors. A paper
record carries the abstract (the document), title, sources and the metadata its files
gave. The first layout (1) kept the abstract in every chunk; `upgrade_layout` moves it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
from chromadb.api.models.Collection import Collection

from rag.index.store import DIGEST_KEY, LAYOUT, LAYOUT_KEY, collection_digest, layout_of, modifiable, pages
from rag.types import Chunk, MetaValue, Paper

log = logging.getLogger(__name__)

# Names our records use; a paper's own metadata field of the same name is stored as meta_<name>.
RESERVED = frozenset({"paper_id", "title", "abstract", "chunk_index", "n_chunks", "paper_hash", "sources"})
RECORD_KEYS = frozenset({"title", "sources", "paper_hash", "record_hash", "n_chunks"})


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


def chunk_metadata(paper: Paper, chunk: Chunk, n_chunks: int, p_hash: str) -> dict[str, MetaValue]:
    """What each chunk carries: enough to rank and group it, never the whole abstract."""
    return {
        "paper_id": paper.paper_id,
        "title": paper.title,
        "chunk_index": chunk.index,
        "n_chunks": n_chunks,
        "paper_hash": p_hash,
    }


def paper_metadata(paper: Paper, n_chunks: int, p_hash: str) -> dict[str, MetaValue]:
    """The paper's record: title, sources and the metadata its files gave (the abstract is the document)."""
    meta: dict[str, MetaValue] = {
        "title": paper.title,
        "sources": ",".join(paper.sources),
        "paper_hash": p_hash,
        "record_hash": record_hash(paper, p_hash),
        "n_chunks": n_chunks,
    }
    for key, value in paper.metadata.items():
        meta[f"meta_{key}" if key in RESERVED | RECORD_KEYS else key] = value
    return meta


def paper_from_record(paper_id: str, abstract: str, meta: dict[str, Any]) -> Paper:
    """A Paper from its record in the papers collection."""
    sources = tuple(str(meta.get("sources", "")).split(",")) if meta.get("sources") else ()
    extra = {k.removeprefix("meta_"): v for k, v in meta.items() if k not in RECORD_KEYS}
    return Paper(paper_id, str(meta.get("title")), abstract, sources, extra)


_LAYOUT1_KEYS = RESERVED | {"sent_spans", "sent_vecs"}
_CHUNK_KEYS = {"paper_id", "title", "chunk_index", "n_chunks", "paper_hash", "sent_spans", "sent_vecs"}
_MOVED = {"abstract", "sources"}


def upgrade_layout(chunks: Collection, papers: Collection, location: str) -> None:
    """Bring an older index to the current layout; nothing is re-embedded.

    Layout 1 kept each abstract in every chunk's metadata: it moves into one record per paper.
    Layouts 1 and 2 had a hash of the sorted ids as digest: it becomes the additive one.
    """
    if layout_of(chunks) < 2:
        _move_abstracts(chunks, papers, location)
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
            pid = str(meta["paper_id"])
            sums[pid] = sums.get(pid, 0) + np.asarray(vector, dtype=np.float32)
            if meta.get("chunk_index") == 0 or pid not in firsts:
                firsts[pid] = dict(meta)
    pids = list(firsts)
    for i in range(0, len(pids), 1000):
        batch = pids[i : i + 1000]
        found = [_paper_from_layout1(pid, firsts[pid]) for pid in batch]
        vectors = [sums[pid] / (np.linalg.norm(sums[pid]) or 1.0) for pid in batch]
        metas: list[Mapping[str, Any]] = [
            paper_metadata(p, int(firsts[p.paper_id]["n_chunks"]), str(firsts[p.paper_id]["paper_hash"])) for p in found
        ]
        papers.upsert(ids=batch, embeddings=np.array(vectors), documents=[p.abstract for p in found], metadatas=metas)
    # Chroma merges metadata on update: None removes the keys the paper records now hold.
    stale_keys = {pid: {k: None for k in meta if k in _MOVED or k not in _CHUNK_KEYS} for pid, meta in firsts.items()}
    for page in pages(chunks, ["metadatas"]):  # updating metadata leaves the records and their order as they are
        removals = [stale_keys[str(m["paper_id"])] for m in page["metadatas"] or []]
        chunks.update(ids=page["ids"], metadatas=removals)  # type: ignore[arg-type]


def _paper_from_layout1(pid: str, meta: dict[str, Any]) -> Paper:
    sources = tuple(str(meta.get("sources", "")).split(",")) if meta.get("sources") else ()
    extra = {k: v for k, v in meta.items() if k not in _LAYOUT1_KEYS}
    return Paper(pid, str(meta.get("title")), str(meta.get("abstract", "")), sources, extra)
