"""Incremental, idempotent, crash-safe ingest of papers into Chroma and BM25.

Chunk ids are content hashes, so the work is a set difference: embed only the
chunks Chroma lacks, then delete the ones no input needs any more. New chunks
are written before stale ones are deleted, and every write is an idempotent
upsert, so an ingest killed at any point and run again converges to the exact
index. All inputs are parsed before the index is touched: a bad file changes
nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock
from tqdm import tqdm

from rag.chunking import chunk_paper
from rag.config import Settings, get_settings
from rag.corpus import bundled_paths, load_corpus
from rag.embeddings import MiniLMEmbedder
from rag.index import IndexHandle, index_exists, iter_records, open_index, rebuild_lexical, synced_lexical
from rag.sentences import encode_vectors, sentence_spans
from rag.store import DIGEST_KEY, drop_collection, ids_digest, stamp_digest
from rag.types import Chunk, MetaValue, Paper

log = logging.getLogger(__name__)

_UPSERT_BATCH = 64
_DELETE_BATCH = 1000
_CHUNKER_VERSION = "2"  # 2: sentence spans and late-chunked sentence vectors
RESERVED = frozenset({"paper_id", "title", "abstract", "chunk_index", "n_chunks", "paper_hash", "sources"})


@dataclass
class IngestReport:
    papers: int
    chunks: int
    added: int
    removed: int
    unchanged_papers: int
    seconds: float
    location: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paper_hash(paper: Paper, settings: Settings) -> str:
    """Everything that determines a paper's chunks; a change re-embeds the paper."""
    key = "\x00".join(
        [paper.title, paper.abstract, str(settings.chunk_tokens), str(settings.chunk_overlap), _CHUNKER_VERSION]
    )
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def chunk_metadata(paper: Paper, chunk: Chunk, n_chunks: int, p_hash: str) -> dict[str, MetaValue]:
    meta: dict[str, MetaValue] = {
        "paper_id": paper.paper_id,
        "title": paper.title,
        "abstract": paper.abstract,
        "chunk_index": chunk.index,
        "n_chunks": n_chunks,
        "paper_hash": p_hash,
        "sources": ",".join(paper.sources),
    }
    for key, value in paper.metadata.items():
        meta[f"meta_{key}" if key in RESERVED else key] = value
    return meta


def _inputs(paths: Sequence[str | Path] | None, include_bundled: bool | None) -> list[Path]:
    files = [Path(p) for p in paths or []]
    if include_bundled or (include_bundled is None and not files):
        files = bundled_paths() + files
    return files


def ingest(
    paths: Sequence[str | Path] | None = None,
    *,
    include_bundled: bool | None = None,
    sync: bool = False,
    rebuild: bool = False,
    settings: Settings | None = None,
    progress: bool = True,
) -> IngestReport:
    """Add the papers of `paths` (default: the bundled collection) to the index.

    `include_bundled` adds the bundled collection to `paths`; `sync` removes
    indexed papers that are not in the inputs; `rebuild` re-embeds everything
    (needed after changing the embedding model).
    """
    s = settings or get_settings()
    start = time.perf_counter()
    files = _inputs(paths, include_bundled)
    handle = open_index(s) if not rebuild and index_exists(s) else None
    known_titles = {str(m.get("title")) for _, _, m in _records(handle)}
    papers = load_corpus(files, known_titles=known_titles)  # raises before anything is written
    s.index_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(s.index_dir / ".ingest.lock")):
        if rebuild:
            drop_collection(s)
        handle = open_index(s, create=True)
        assert handle is not None
        report = _apply(handle, papers, _records(handle), sync, progress)
    report.seconds = round(time.perf_counter() - start, 3)
    return report


def _write_batch(handle: IndexHandle, batch: list[tuple[Chunk, dict[str, MetaValue]]]) -> None:
    """Embed and upsert chunks with their sentence spans (and, for MiniLM, sentence vectors)."""
    texts = [c.text for c, _ in batch]
    spans = [sentence_spans(c.text, len(c.title) + 1) for c, _ in batch]
    metas = [dict(m, sent_spans=json.dumps(sp)) for (_, m), sp in zip(batch, spans, strict=True)]
    ids = [c.chunk_id for c, _ in batch]
    if isinstance(handle.embedder, MiniLMEmbedder):
        vectors, sentence_vectors = handle.embedder.embed_with_spans(texts, spans)
        for meta, sv in zip(metas, sentence_vectors, strict=True):
            meta["sent_vecs"] = encode_vectors(sv)
        handle.collection.upsert(ids=ids, embeddings=vectors, documents=texts, metadatas=metas)  # type: ignore[arg-type]
    else:
        handle.store.add_texts(texts=texts, metadatas=metas, ids=ids)


def _records(handle: IndexHandle | None) -> list[tuple[str, str, dict[str, Any]]]:
    return list(iter_records(handle.collection, include_documents=False)) if handle else []


def _apply(
    handle: IndexHandle,
    papers: list[Paper],
    existing: list[tuple[str, str, dict[str, Any]]],
    sync: bool,
    progress: bool,
) -> IngestReport:
    s = handle.settings
    by_paper: dict[str, dict[str, str]] = {}  # paper_id -> {chunk_id: paper_hash}
    for chunk_id, _, meta in existing:
        by_paper.setdefault(str(meta.get("paper_id")), {})[chunk_id] = str(meta.get("paper_hash"))
    n_chunks_of = {str(m.get("paper_id")): int(m.get("n_chunks", 0)) for _, _, m in existing}

    wanted_ids: set[str] = set()
    to_add: list[tuple[Chunk, dict[str, MetaValue]]] = []
    unchanged = 0
    for paper in papers:
        p_hash = paper_hash(paper, s)
        have = by_paper.get(paper.paper_id, {})
        current = [cid for cid, h in have.items() if h == p_hash]
        if current and len(current) == n_chunks_of.get(paper.paper_id) and len(current) == len(have):
            wanted_ids.update(current)  # complete and nothing stale: no need to even chunk it
            unchanged += 1
            continue
        chunks = chunk_paper(paper, s.chunk_tokens, s.chunk_overlap)
        for chunk in chunks:
            wanted_ids.add(chunk.chunk_id)
            if chunk.chunk_id not in have:
                to_add.append((chunk, chunk_metadata(paper, chunk, len(chunks), p_hash)))

    input_ids = {p.paper_id for p in papers}
    stale = [
        cid for pid, chunks in by_paper.items() if pid in input_ids or sync for cid in chunks if cid not in wanted_ids
    ]

    with tqdm(
        total=len(to_add), desc="embedding", unit="chunk", file=sys.stderr, disable=not progress or not to_add
    ) as bar:
        for i in range(0, len(to_add), _UPSERT_BATCH):
            batch = to_add[i : i + _UPSERT_BATCH]
            _write_batch(handle, batch)
            bar.update(len(batch))
    for i in range(0, len(stale), _DELETE_BATCH):
        handle.collection.delete(ids=stale[i : i + _DELETE_BATCH])

    final_ids = ({cid for cid, _, _ in existing} - set(stale)) | {c.chunk_id for c, _ in to_add}
    digest = ids_digest(final_ids)
    if (handle.collection.metadata or {}).get(DIGEST_KEY) != digest:
        stamp_digest(handle.collection, handle.model_id, digest)
    if to_add or stale:
        rebuild_lexical(handle)
    else:
        synced_lexical(handle)  # repairs a BM25 index left stale by an interrupted run
    log.info("ingest: %d added, %d removed, %d papers unchanged", len(to_add), len(stale), unchanged)
    return IngestReport(
        papers=len(papers),
        chunks=len(final_ids),
        added=len(to_add),
        removed=len(stale),
        unchanged_papers=unchanged,
        seconds=0.0,
        location=s.index_location(),
    )
