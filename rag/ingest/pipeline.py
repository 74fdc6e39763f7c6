"""Incremental, idempotent, crash-safe ingest of papers into Chroma and BM25.

Chunk ids are content hashes, so the work is a set difference: embed only the
papers whose chunks Chroma lacks, then delete the chunks no input needs any
more. A paper's record is written before its chunks and new chunks before
stale ones are deleted; every write is an idempotent upsert, so an ingest
killed at any point and run again converges to the exact index. All inputs
are parsed and checked before the index is touched: a bad file changes nothing.
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

import numpy as np
from tqdm import tqdm

from rag.config import Settings
from rag.index.embedder import SpanEmbedder
from rag.index.paper_index import Collections, PaperIndex
from rag.index.records import chunk_metadata, encode_vectors, paper_metadata, record_hash
from rag.index.store import digest_of, ids_digest, iter_records, stamp
from rag.ingest.chunking import chunk_paper
from rag.ingest.corpus import bundled_paths, load_corpus
from rag.text import sentence_spans
from rag.types import Chunk, MetaValue, Paper

log = logging.getLogger(__name__)

_UPSERT_BATCH = 64  # chunks embedded and written per step (whole papers; a long paper is one step)
_DELETE_BATCH = 1000
_CHROMA_BATCH = 4000  # below Chroma's max batch size
_CHUNKER_VERSION = "3"  # 2: sentence spans and late-chunked sentence vectors; 3: true token overlap


@dataclass
class IngestReport:
    papers: int
    chunks: int
    added: int
    removed: int
    unchanged_papers: int
    seconds: float
    location: str
    new_papers: int = 0  # papers the index did not hold
    updated_papers: int = 0  # papers it held whose text, sources or metadata changed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paper_hash(paper: Paper, settings: Settings) -> str:
    """Everything that determines a paper's chunks; a change re-embeds the paper."""
    key = "\x00".join(
        [paper.title, paper.abstract, str(settings.chunk_tokens), str(settings.chunk_overlap), _CHUNKER_VERSION]
    )
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _inputs(paths: Sequence[str | Path] | None, include_bundled: bool | None) -> list[Path]:
    files = [Path(p) for p in paths or []]
    if include_bundled or (include_bundled is None and not files):
        files = bundled_paths() + files
    return files


def ingest(
    index: PaperIndex,
    paths: Sequence[str | Path] | None = None,
    *,
    include_bundled: bool | None = None,
    sync: bool = False,
    rebuild: bool = False,
    progress: bool = True,
    if_missing: bool = False,
) -> IngestReport | None:
    """Add the papers of `paths` (default: the bundled collection) to `index`.

    `include_bundled` adds the bundled collection to `paths`; `sync` removes
    indexed papers that are not in the inputs; `rebuild` re-embeds everything
    (needed after changing the embedding model); `if_missing` does nothing
    (returns None) when, holding the ingest lock, the index turns out to exist.
    """
    s = index.settings
    start = time.perf_counter()
    files = _inputs(paths, include_bundled)
    with index.errors():
        opened = index.open() if not rebuild and index.exists() else None
        known_titles = {str(m.get("title")) for _, m in _paper_records(opened)}
    # Raises (with path:line) before anything is written.
    papers = load_corpus(files, known_titles=known_titles, max_abstract_chars=s.max_abstract_chars)
    with index.errors(), index.ingest_lock():
        # Read the index afresh: another process may have written it since this one opened it,
        # and the diff and the digest must be computed against what is on disk.
        index.reload()
        if if_missing and index.exists():
            return None
        if rebuild:
            index.drop()
        opened = index.open(create=True)
        assert opened is not None
        report = _apply(index, opened, papers, sync, progress)
    report.seconds = round(time.perf_counter() - start, 3)
    return report


def _embed(index: PaperIndex, chunks: list[Chunk]) -> tuple[np.ndarray, list[dict[str, MetaValue]]]:
    """Chunk vectors and, per chunk, its sentence spans (and, when the embedder can, sentence vectors)."""
    texts = [c.text for c in chunks]
    spans = [sentence_spans(c.text, c.text.index("\n") + 1) for c in chunks]  # after the title line
    extras: list[dict[str, MetaValue]] = [{"sent_spans": json.dumps(sp)} for sp in spans]
    embedder = index.embedder
    if isinstance(embedder, SpanEmbedder):
        vectors, sentence_vectors = embedder.embed_with_spans(texts, spans)
        for extra, sv in zip(extras, sentence_vectors, strict=True):
            extra["sent_vecs"] = encode_vectors(sv)
    else:
        vectors = np.array(embedder.embed_documents(texts), dtype=np.float32)
    return vectors, extras


def _replacing(new: dict[str, MetaValue], old: dict[str, Any] | None) -> dict[str, MetaValue | None]:
    """`new`, plus None for each key only the old record has: Chroma merges metadata, None deletes a key."""
    return {**dict.fromkeys(old or {}), **new}


def _write_papers(
    opened: Collections,
    index: PaperIndex,
    group: list[tuple[Paper, list[Chunk], str]],
    old_records: dict[str, dict[str, Any]],
) -> None:
    """Embed the chunks of whole papers; write each paper's record, then its chunks.

    Record first: a reader that finds a chunk always finds its abstract, and an
    interrupted run leaves at worst a record whose chunks the next run adds.
    """
    chunks = [c for _, paper_chunks, _ in group for c in paper_chunks]
    vectors, extras = _embed(index, chunks)
    ids, docs, records, paper_vectors = [], [], [], []
    offset = 0
    for paper, paper_chunks, p_hash in group:
        mean = vectors[offset : offset + len(paper_chunks)].mean(axis=0)
        paper_vectors.append(mean / (np.linalg.norm(mean) or 1.0))
        ids.append(paper.paper_id)
        docs.append(paper.abstract)
        records.append(_replacing(paper_metadata(paper, len(paper_chunks), p_hash), old_records.get(paper.paper_id)))
        offset += len(paper_chunks)
    opened.papers.upsert(ids=ids, embeddings=np.array(paper_vectors), documents=docs, metadatas=records)  # type: ignore[arg-type]
    metas = [
        chunk_metadata(paper, c, len(paper_chunks), p_hash)
        for paper, paper_chunks, p_hash in group
        for c in paper_chunks
    ]
    for meta, extra in zip(metas, extras, strict=True):
        meta.update(extra)
    for i in range(0, len(chunks), _CHROMA_BATCH):
        part = slice(i, i + _CHROMA_BATCH)
        opened.chunks.upsert(
            ids=[c.chunk_id for c in chunks[part]],
            embeddings=vectors[part],
            documents=[c.text for c in chunks[part]],
            metadatas=metas[part],  # type: ignore[arg-type]
        )


def _paper_records(opened: Collections | None) -> list[tuple[str, dict[str, Any]]]:
    if opened is None:
        return []
    return [(pid, meta) for pid, _, meta in iter_records(opened.papers, include_documents=False)]


def _chunk_ids_by_paper(opened: Collections) -> dict[str, dict[str, str]]:
    """paper_id -> {chunk_id: paper_hash} of every chunk in the index."""
    by_paper: dict[str, dict[str, str]] = {}
    for chunk_id, _, meta in iter_records(opened.chunks, include_documents=False):
        by_paper.setdefault(str(meta.get("paper_id")), {})[chunk_id] = str(meta.get("paper_hash"))
    return by_paper


def _apply(index: PaperIndex, opened: Collections, papers: list[Paper], sync: bool, progress: bool) -> IngestReport:
    s = index.settings
    by_paper = _chunk_ids_by_paper(opened)
    records = dict(_paper_records(opened))

    wanted_ids: set[str] = set()
    to_embed: list[tuple[Paper, list[Chunk], str]] = []
    to_relabel: list[Paper] = []
    unchanged = 0
    for paper in papers:
        p_hash = paper_hash(paper, s)
        have = by_paper.get(paper.paper_id, {})
        record = records.get(paper.paper_id, {})
        current = [cid for cid, h in have.items() if h == p_hash]
        complete = (
            current
            and len(current) == len(have)
            and record.get("paper_hash") == p_hash
            and int(record.get("n_chunks", -1)) == len(current)
        )
        if complete:
            wanted_ids.update(current)  # nothing to embed: not even re-chunked
            if record.get("record_hash") == record_hash(paper, p_hash):
                unchanged += 1
            else:
                to_relabel.append(paper)  # new source file or metadata: rewrite the record only
            continue
        chunks = chunk_paper(paper, s.chunk_tokens, s.chunk_overlap)
        wanted_ids.update(c.chunk_id for c in chunks)
        to_embed.append((paper, chunks, p_hash))

    input_ids = {p.paper_id for p in papers}
    stale = [
        cid for pid, chunks in by_paper.items() if pid in input_ids or sync for cid in chunks if cid not in wanted_ids
    ]
    stale_papers = [pid for pid in records if sync and pid not in input_ids]

    total = sum(len(c) for _, c, _ in to_embed)
    with tqdm(total=total, desc="embedding", unit="chunk", file=sys.stderr, disable=not progress or not total) as bar:
        group: list[tuple[Paper, list[Chunk], str]] = []
        in_group = 0
        for item in to_embed:
            group.append(item)
            in_group += len(item[1])
            if in_group >= _UPSERT_BATCH or item is to_embed[-1]:
                _write_papers(opened, index, group, records)
                bar.update(in_group)
                group, in_group = [], 0
    for paper in to_relabel:
        meta = paper_metadata(paper, int(records[paper.paper_id]["n_chunks"]), paper_hash(paper, s))
        opened.papers.update(ids=[paper.paper_id], metadatas=[_replacing(meta, records[paper.paper_id])])
    for i in range(0, len(stale), _DELETE_BATCH):
        opened.chunks.delete(ids=stale[i : i + _DELETE_BATCH])
    for i in range(0, len(stale_papers), _DELETE_BATCH):
        opened.papers.delete(ids=stale_papers[i : i + _DELETE_BATCH])

    existing = {cid for chunks in by_paper.values() for cid in chunks}
    added = {c.chunk_id for _, chunks, _ in to_embed for c in chunks} - existing
    final_ids = (existing - set(stale)) | added
    digest = ids_digest(final_ids)
    if digest_of(opened.chunks) != digest:
        stamp(opened.chunks, index.embedder.model_id, digest)
    index.written(digest)
    if added or stale:
        index.rebuild_bm25()
    else:
        index.bm25()  # repairs a BM25 index left stale by an interrupted run
    new_papers = sum(p.paper_id not in records for p in papers)
    log.info("ingest: %d added, %d removed, %d papers unchanged", len(added), len(stale), unchanged)
    return IngestReport(
        papers=len(papers),
        chunks=len(final_ids),
        added=len(added),
        removed=len(stale),
        unchanged_papers=unchanged,
        new_papers=new_papers,
        updated_papers=len(papers) - unchanged - new_papers,
        seconds=0.0,
        location=s.index_location(),
    )


def remove(index: PaperIndex, paper_ids: Sequence[str]) -> int:
    """Remove papers (records, chunks and their BM25 rows) from `index`; the number removed.

    Under the ingest lock, like an ingest: a concurrent ingest waits, and a reader sees
    the index before or after, never between (the digest changes last).
    """
    wanted = set(paper_ids)
    if not wanted:
        return 0
    with index.errors(), index.ingest_lock():
        index.reload()
        opened = index.open()
        if opened is None:
            return 0
        by_paper = _chunk_ids_by_paper(opened)
        held = [pid for pid, _ in _paper_records(opened) if pid in wanted]
        stale = [cid for pid in wanted for cid in by_paper.get(pid, {})]
        for i in range(0, len(stale), _DELETE_BATCH):
            opened.chunks.delete(ids=stale[i : i + _DELETE_BATCH])
        for i in range(0, len(held), _DELETE_BATCH):
            opened.papers.delete(ids=held[i : i + _DELETE_BATCH])
        final_ids = {cid for pid, chunks in by_paper.items() if pid not in wanted for cid in chunks}
        digest = ids_digest(final_ids)
        stamp(opened.chunks, index.embedder.model_id, digest)
        index.written(digest)
        index.rebuild_bm25()
    log.info("removed %d papers (%d chunks)", len(held), len(stale))
    return len(held)
