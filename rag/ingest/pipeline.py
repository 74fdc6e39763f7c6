"""Incremental, idempotent, crash-safe ingest of papers into Chroma and BM25.

Chunk ids are content hashes, so the work is a set difference: embed only the
papers whose chunks Chroma lacks, then delete the chunks no input needs any
more. A paper's record is written before its chunks and new chunks before
stale ones are deleted; every write is an idempotent upsert, so an ingest
killed at any point and run again converges to the exact index. All inputs
are parsed and checked before the index is touched: a bad file changes nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.models.Collection import Collection
from tqdm import tqdm

from rag.config import Settings
from rag.index.embedder import SpanEmbedder
from rag.index.paper_index import Collections, PaperIndex
from rag.index.records import (
    ChunkMeta,
    PaperMeta,
    chunk_metadata,
    encode_vectors,
    paper_metadata,
    record_hash,
    where_papers,
)
from rag.index.store import (
    collection_digest,
    digest_of,
    ids_digest,
    interrupted,
    iter_records,
    mark_writing,
    pages,
    recorded_model,
    stamp,
    updated_digest,
)
from rag.ingest.chunking import chunk_paper
from rag.ingest.corpus import bundled_paths, load_corpus
from rag.text import sentence_spans
from rag.types import Chunk, MetaValue, Paper

log = logging.getLogger(__name__)

_EMBED_STEP = 64  # chunks embedded per step (whole papers; a long paper is one step)
_EMBEDDED_WRITE = 64  # records per upsert into the embedded index (one embedding step: the writer overlaps the next)
_SERVER_WRITE = 1000  # records per upsert into a Chroma server (fewer round trips), within its max batch size
_IN_FLIGHT = 2  # write batches waiting for the writer thread at most
_LOOKUP_BATCH = 500  # paper ids per lookup of existing chunks and records
_DELETE_BATCH = 1000
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
) -> IngestReport:
    """Add the papers of `paths` (default: the bundled collection) to `index`.

    `include_bundled` adds the bundled collection to `paths`; `sync` removes
    indexed papers that are not in the inputs; `rebuild` re-embeds everything
    (needed after changing the embedding model).
    """
    s = index.settings
    start = time.perf_counter()
    files = _inputs(paths, include_bundled)
    with index.errors():
        opened = index.open() if not rebuild and index.exists() else None
        # Indexed titles help split run-together title/abstract lines, found only in listing .txt files.
        known_titles = _titles(opened) if any(f.suffix.lower() == ".txt" for f in files) else []
    # Raises (with path:line) before anything is written.
    papers = load_corpus(files, known_titles=known_titles, max_abstract_chars=s.max_abstract_chars)
    with index.errors(), index.ingest_lock():
        # Read the index afresh: another process may have written it since this one opened it,
        # and the diff and the digest must be computed against what is on disk.
        index.reload()
        if rebuild:
            index.drop()
        opened = index.open(create=True)
        assert opened is not None
        report = _apply(index, opened, papers, sync, progress)
    report.seconds = round(time.perf_counter() - start, 3)
    return report


def _titles(opened: Collections | None) -> list[str]:
    if opened is None:
        return []
    return [PaperMeta.decode(m).title for _, _, m in iter_records(opened.papers, include_documents=False)]


def _embed(
    index: PaperIndex, chunks: list[Chunk]
) -> tuple[np.ndarray, list[tuple[list[tuple[int, int]], str | None]]]:
    """Chunk vectors and, per chunk, its sentence spans and (when the embedder can make them) their vectors."""
    texts = [c.text for c in chunks]
    spans = [sentence_spans(c.text, c.text.index("\n") + 1) for c in chunks]  # after the title line
    embedder = index.embedder
    if isinstance(embedder, SpanEmbedder):
        vectors, sentence_vectors = embedder.embed_with_spans(texts, spans)
        return vectors, [(sp, encode_vectors(sv)) for sp, sv in zip(spans, sentence_vectors, strict=True)]
    vectors = np.array(embedder.embed_documents(texts), dtype=np.float32)
    return vectors, [(sp, None) for sp in spans]


def _replacing(new: dict[str, MetaValue], old: dict[str, Any] | None) -> dict[str, MetaValue | None]:
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
    chunk_metas: list[dict[str, MetaValue]] = field(default_factory=list)


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
            _replacing(paper_metadata(paper, len(paper_chunks), p_hash), old_records.get(paper.paper_id))
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


def _embed_and_write(
    index: PaperIndex,
    opened: Collections,
    to_embed: list[tuple[Paper, list[Chunk], str]],
    records: dict[str, dict[str, Any]],
    progress: bool,
) -> None:
    """Embed in this thread while a writer thread upserts the previous batch (ONNX and Chroma release the GIL).

    At most `_IN_FLIGHT` batches wait for the writer, so memory stays bounded however large the input.
    """
    total = sum(len(c) for _, c, _ in to_embed)
    batch = _write_batch(index)
    in_flight: deque[tuple[Future[None], int]] = deque()
    bar = tqdm(total=total, desc="embedding", unit="chunk", file=sys.stderr, disable=not progress or not total)
    with bar, ThreadPoolExecutor(max_workers=1, thread_name_prefix="chroma-writer") as writer:

        def submit(writes: _Writes) -> None:
            while len(in_flight) >= _IN_FLIGHT:
                done, n = in_flight.popleft()
                done.result()  # re-raises a write's failure here
                bar.update(n)
            in_flight.append((writer.submit(_write, opened, writes, batch), len(writes.chunk_ids)))

        try:
            writes, group, in_group = _Writes(), [], 0
            for item in to_embed:
                group.append(item)
                in_group += len(item[1])
                if in_group >= _EMBED_STEP or item is to_embed[-1]:
                    _prepare(index, group, records, writes)
                    group, in_group = [], 0
                    if len(writes.chunk_ids) >= batch or item is to_embed[-1]:
                        submit(writes)
                        writes = _Writes()
            while in_flight:
                done, n = in_flight.popleft()
                done.result()
                bar.update(n)
        finally:
            for pending, _ in in_flight:
                pending.cancel()


def _existing(opened: Collections, paper_ids: list[str]) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, Any]]]:
    """For these papers: {paper_id: {chunk_id: paper_hash}} of their chunks, and their records' metadata."""
    by_paper: dict[str, dict[str, str]] = {}
    records: dict[str, dict[str, Any]] = {}
    if not paper_ids:
        return by_paper, records
    chunks = opened.chunks.get(where=where_papers(paper_ids), include=["metadatas"])
    for chunk_id, meta in zip(chunks["ids"], chunks["metadatas"] or [], strict=True):
        chunk = ChunkMeta.decode(meta)
        by_paper.setdefault(chunk.paper_id, {})[chunk_id] = chunk.paper_hash
    got = opened.papers.get(ids=paper_ids, include=["metadatas"])
    for paper_id, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
        records[paper_id] = dict(meta or {})
    return by_paper, records


def _chunk_ids_of(opened: Collections, paper_ids: Sequence[str]) -> list[str]:
    found: list[str] = []
    ids = list(paper_ids)
    for i in range(0, len(ids), _LOOKUP_BATCH):
        found += opened.chunks.get(where=where_papers(ids[i : i + _LOOKUP_BATCH]), include=[])["ids"]
    return found


def _paper_ids(opened: Collections) -> Iterator[str]:
    """Every paper id the index holds, page by page (ids only)."""
    for page in pages(opened.papers, []):
        yield from page["ids"]


def _delete(collection: Any, ids: Sequence[str]) -> None:
    for i in range(0, len(ids), _DELETE_BATCH):
        collection.delete(ids=list(ids[i : i + _DELETE_BATCH]))


def _finish(
    index: PaperIndex,
    opened: Collections,
    before: str | None,
    repair: bool,
    added: list[str],
    added_texts: list[str],
    stale: list[str],
) -> str:
    """Stamp the new digest and bring BM25 along: incrementally, or from Chroma after an interrupted run."""
    fresh = repair or before is None
    digest = collection_digest(opened.chunks) if fresh else updated_digest(before or "", added, stale)
    if digest_of(opened.chunks) != digest or interrupted(opened.chunks):
        stamp(opened.chunks, recorded_model(opened.chunks) or index.embedder.model_id, digest)
    index.written(digest)
    if fresh:
        index.rebuild_bm25()
    elif added or stale:
        index.update_bm25(before, added, added_texts, stale, digest)
    else:
        index.bm25(digest)  # repairs a BM25 index left stale by another process
    return digest


def _apply(index: PaperIndex, opened: Collections, papers: list[Paper], sync: bool, progress: bool) -> IngestReport:
    s = index.settings
    before = digest_of(opened.chunks)
    if before is None and opened.chunks.count() == 0:
        before = ids_digest([])  # a new index: everything is added, nothing to recompute
    repair = interrupted(opened.chunks)

    to_embed: list[tuple[Paper, list[Chunk], str]] = []
    to_relabel: list[tuple[Paper, dict[str, Any]]] = []
    records: dict[str, dict[str, Any]] = {}  # of the papers to embed (their old keys are cleared)
    stale: list[str] = []
    added: list[str] = []
    added_texts: list[str] = []
    unchanged = new_papers = 0
    for i in range(0, len(papers), _LOOKUP_BATCH):  # only the input's papers are read, never the whole index
        batch = papers[i : i + _LOOKUP_BATCH]
        by_paper, batch_records = _existing(opened, [p.paper_id for p in batch])
        for paper in batch:
            p_hash = paper_hash(paper, s)
            have = by_paper.get(paper.paper_id, {})
            record = batch_records.get(paper.paper_id)
            new_papers += record is None
            record = record or {}
            stored = PaperMeta.decode(record)
            current = [cid for cid, h in have.items() if h == p_hash]
            complete = (
                current
                and len(current) == len(have)
                and stored.paper_hash == p_hash
                and stored.n_chunks == len(current)
            )
            if complete:  # nothing to embed: not even re-chunked
                if stored.record_hash == record_hash(paper, p_hash):
                    unchanged += 1
                else:
                    to_relabel.append((paper, record))  # new source file or metadata: rewrite the record only
                continue
            chunks = chunk_paper(paper, s.chunk_tokens, s.chunk_overlap)
            wanted = {c.chunk_id for c in chunks}
            stale += [cid for cid in have if cid not in wanted]
            for c in chunks:
                if c.chunk_id not in have:
                    added.append(c.chunk_id)
                    added_texts.append(c.text)
            records[paper.paper_id] = record
            to_embed.append((paper, chunks, p_hash))

    stale_papers: list[str] = []
    if sync:
        input_ids = {p.paper_id for p in papers}
        stale_papers = [pid for pid in _paper_ids(opened) if pid not in input_ids]
        stale += _chunk_ids_of(opened, stale_papers)

    if to_embed or to_relabel or stale:
        mark_writing(opened.chunks)
    _embed_and_write(index, opened, to_embed, records, progress)
    for paper, record in to_relabel:
        meta = paper_metadata(paper, PaperMeta.decode(record).n_chunks, paper_hash(paper, s))
        opened.papers.update(ids=[paper.paper_id], metadatas=[_replacing(meta, record)])
    _delete(opened.chunks, stale)
    _delete(opened.papers, stale_papers)
    _finish(index, opened, before, repair, added, added_texts, stale)
    log.info("ingest: %d added, %d removed, %d papers unchanged", len(added), len(stale), unchanged)
    return IngestReport(
        papers=len(papers),
        chunks=opened.chunks.count(),
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
    wanted = list(dict.fromkeys(paper_ids))
    if not wanted:
        return 0
    with index.errors(), index.ingest_lock():
        index.reload()
        opened = index.open()
        if opened is None:
            return 0
        before = digest_of(opened.chunks)
        repair = interrupted(opened.chunks)
        held = [pid for i in range(0, len(wanted), _LOOKUP_BATCH)
                for pid in opened.papers.get(ids=wanted[i : i + _LOOKUP_BATCH], include=[])["ids"]]  # fmt: skip
        stale = _chunk_ids_of(opened, wanted)
        if held or stale:
            mark_writing(opened.chunks)
        _delete(opened.chunks, stale)
        _delete(opened.papers, held)
        _finish(index, opened, before, repair, [], [], stale)
    log.info("removed %d papers (%d chunks)", len(held), len(stale))
    return len(held)
