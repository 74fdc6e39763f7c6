"""Incremental, idempotent, crash-safe ingest of papers into Chroma and BM25: the diff and the finish.

Chunk ids are content hashes, so the work is a set difference: embed only the
papers whose chunks Chroma lacks, then delete the chunks no input needs any
more. A paper's record is written before its chunks and new chunks before
stale ones are deleted; every write is an idempotent upsert, so an ingest
killed at any point and run again converges to the exact index. All inputs
are parsed and checked before the index is touched: a bad file changes nothing.
They are then read again and the diff is decided a batch of papers at a time,
so memory stays bounded however large the input (rag.ingest.corpus.Corpus).
Embedding and writing the papers the diff selects is rag.ingest.writer's stage.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from rag.config import Settings
from rag.index.bm25 import SegmentBuilder
from rag.index.paper_index import Collections, PaperIndex
from rag.index.records import (
    ChunkMeta,
    PaperMeta,
    paper_metadata,
    record_hash,
    refiltered,
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
from rag.ingest.corpus import Corpus, bundled_paths
from rag.ingest.writer import delete, embed_and_write, replacing
from rag.types import Chunk, Paper

log = logging.getLogger(__name__)

_LOOKUP_BATCH = 500  # paper ids per lookup of existing chunks and records
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
    notes: list[str] = field(default_factory=list)  # what reading the inputs warned of: entries skipped, empty files

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
    # Reads every input once to check it (raising with path:line before anything is written); they are
    # read again as they are written, so a million-record file is never held in memory.
    corpus = Corpus(files, known_titles=known_titles, max_abstract_chars=s.max_abstract_chars, progress=progress)
    with index.errors(), index.ingest_lock():
        # Read the index afresh: another process may have written it since this one opened it,
        # and the diff and the digest must be computed against what is on disk.
        index.reload()
        if rebuild:
            index.drop()
        opened = index.open(create=True)
        assert opened is not None
        report = _apply(index, opened, corpus, sync, progress)
    report.seconds = round(time.perf_counter() - start, 3)
    report.notes = corpus.notes
    return report


def _titles(opened: Collections | None) -> list[str]:
    if opened is None:
        return []
    return [PaperMeta.decode(m).title for _, _, m in iter_records(opened.papers, include_documents=False)]


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


def _finish(
    index: PaperIndex,
    opened: Collections,
    before: str | None,
    repair: bool,
    added: list[str],
    new: SegmentBuilder,
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
        index.update_bm25(new, stale, digest)
    else:
        index.bm25(digest)  # repairs a BM25 index left stale by another process
    return digest


class _Diff:
    """What an ingest changes, decided a batch of input papers at a time (only they are read from the index)."""

    def __init__(self, index: PaperIndex, opened: Collections, bm25: SegmentBuilder) -> None:
        self.index, self.opened, self.bm25 = index, opened, bm25
        self.empty = opened.chunks.count() == 0 and opened.papers.count() == 0  # nothing to look up
        self.records: dict[str, dict[str, Any]] = {}  # old records of the papers re-embedded (keys to clear)
        self.added: list[str] = []
        self.stale: list[str] = []
        self.unchanged = self.new_papers = self.papers = 0
        self._marked = False

    def writing(self) -> None:
        """Mark the index as being written, once, before its first write."""
        if not self._marked:
            mark_writing(self.opened.chunks)
            self._marked = True

    def to_embed(self, papers: Iterator[Paper], bar: tqdm[Any]) -> Iterator[tuple[Paper, list[Chunk], str]]:
        """The papers whose chunks must be embedded, with their chunks and hash; relabels the others in passing.

        `bar` counts the papers done: here the ones with nothing to embed, the others once written.
        """
        s = self.index.settings
        while batch := list(itertools.islice(papers, _LOOKUP_BATCH)):
            by_paper, batch_records = ({}, {}) if self.empty else _existing(self.opened, [p.paper_id for p in batch])
            for paper in batch:
                self.papers += 1
                p_hash = paper_hash(paper, s)
                have = by_paper.get(paper.paper_id, {})
                record = batch_records.get(paper.paper_id)
                self.new_papers += record is None
                stored = PaperMeta.decode(record or {})
                current = [cid for cid, h in have.items() if h == p_hash]
                complete = (
                    current
                    and len(current) == len(have)
                    and stored.paper_hash == p_hash
                    and stored.n_chunks == len(current)
                )
                if complete:  # nothing to embed: not even re-chunked
                    bar.update()
                    if stored.record_hash == record_hash(paper, p_hash):
                        self.unchanged += 1
                    else:  # a new source file or metadata: the record and its chunks' filter fields, no embedding
                        self.writing()
                        meta = paper_metadata(paper, stored.n_chunks, p_hash)
                        self.opened.papers.update(ids=[paper.paper_id], metadatas=[replacing(meta, record)])
                        self.opened.chunks.update(ids=list(have), metadatas=[refiltered(paper)] * len(have))
                    continue
                chunks = chunk_paper(paper, s.chunk_tokens, s.chunk_overlap)
                wanted = {c.chunk_id for c in chunks}
                self.stale += [cid for cid in have if cid not in wanted]
                for c in chunks:
                    if c.chunk_id not in have:
                        self.added.append(c.chunk_id)
                        self.bm25.add(c.chunk_id, c.text)
                if record:
                    self.records[paper.paper_id] = record
                self.writing()
                yield paper, chunks, p_hash


def _apply(index: PaperIndex, opened: Collections, corpus: Corpus, sync: bool, progress: bool) -> IngestReport:
    before = digest_of(opened.chunks)
    if before is None and opened.chunks.count() == 0:
        before = ids_digest([])  # a new index: everything is added, nothing to recompute
    repair = interrupted(opened.chunks)
    diff = _Diff(index, opened, index.segment_builder(None if repair else before))
    bar = tqdm(total=len(corpus), desc="ingesting", unit=" papers", file=sys.stderr, disable=not progress)
    with bar:
        embed_and_write(index, opened, diff.to_embed(corpus.papers(), bar), diff.records, bar.update)
    stale_papers: list[str] = []
    if sync:
        stale_papers = [pid for pid in _paper_ids(opened) if pid not in corpus]
        diff.stale += _chunk_ids_of(opened, stale_papers)
    if diff.stale or stale_papers:
        diff.writing()
    delete(opened.chunks, diff.stale)
    delete(opened.papers, stale_papers)
    _finish(index, opened, before, repair, diff.added, diff.bm25, diff.stale)
    log.info("ingest: %d added, %d removed, %d papers unchanged", len(diff.added), len(diff.stale), diff.unchanged)
    return IngestReport(
        papers=diff.papers,
        chunks=opened.chunks.count(),
        added=len(diff.added),
        removed=len(diff.stale),
        unchanged_papers=diff.unchanged,
        new_papers=diff.new_papers,
        updated_papers=diff.papers - diff.unchanged - diff.new_papers,
        seconds=0.0,
        location=index.settings.index_location(),
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
        delete(opened.chunks, stale)
        delete(opened.papers, held)
        _finish(index, opened, before, repair, [], index.segment_builder(None if repair else before), stale)
    log.info("removed %d papers (%d chunks)", len(held), len(stale))
    return len(held)
