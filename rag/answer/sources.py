"""The retrieved papers as numbered sources: whole abstract, sentences and sentence vectors."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from rag.index.errors import IndexMissing
from rag.index.paper_index import PaperIndex
from rag.index.records import ChunkMeta, PaperMeta, where_papers
from rag.text import content_terms, sentence_spans
from rag.types import Citation, Hit


@dataclass
class Source:
    """Source `number` (1-based, as numbered in the prompt) with what the checks need."""

    number: int
    hit: Hit
    abstract: str
    sentences: list[str]
    vectors: np.ndarray | None = None  # (len(sentences), 384), late-chunked at ingest
    terms: list[set[str]] = field(default_factory=list)  # content terms of each sentence
    record: PaperMeta | None = None  # the paper's record: its files and provenance

    @property
    def title(self) -> str:
        return self.hit.title

    def citation(self, evidence: str) -> Citation:
        """This source cited with `evidence`, carrying its provenance."""
        record = self.record or PaperMeta(self.title)
        return Citation(self.title, self.hit.paper_id, evidence, self.abstract, dict(record.metadata), record.sources)

    @property
    def all_terms(self) -> set[str]:
        return set().union(*self.terms) if self.terms else set()


def load_sources(index: PaperIndex, hits: list[Hit]) -> list[Source]:
    """One Source per hit, in hit order, assembled from the paper's record and all its chunks.

    Sentence vectors come from ingest (late chunking); for an index built with an embedder
    that cannot make them, the sentences are embedded now.
    """
    if not hits:
        return []
    opened = index.open()
    if opened is None:
        raise IndexMissing(f"there is no index at {index.location} yet; build it with `rag ingest`")
    ids = [h.paper_id for h in hits]
    got = opened.chunks.get(where=where_papers(ids), include=["documents", "metadatas"])
    records = opened.papers.get(ids=ids, include=["documents", "metadatas"])
    abstracts = {pid: doc or "" for pid, doc in zip(records["ids"], records["documents"] or [], strict=True)}
    metas = {pid: PaperMeta.decode(m) for pid, m in zip(records["ids"], records["metadatas"] or [], strict=True)}
    chunks: dict[str, list[tuple[int, str, ChunkMeta]]] = {}
    for doc, meta in zip(got["documents"] or [], got["metadatas"] or [], strict=True):
        chunk = ChunkMeta.decode(meta)
        chunks.setdefault(chunk.paper_id, []).append((chunk.chunk_index, doc or "", chunk))
    sources = []
    for number, hit in enumerate(hits, start=1):
        parts = sorted(chunks.get(hit.paper_id, []), key=lambda c: c[0])
        # A paper record is written before its chunks; the fallback covers a concurrent removal.
        abstract = abstracts.get(hit.paper_id) or hit.text.split("\n", 1)[-1]
        sentences, vectors = _sentences_with_vectors(abstract, parts)
        have_vectors = vectors is not None
        source = Source(
            number, hit, abstract, sentences, vectors if have_vectors else None, record=metas.get(hit.paper_id)
        )
        source.terms = [set(content_terms(s)) for s in sentences]
        if source.vectors is None and sentences:
            source.vectors = index.sentence_embedder.embed_array(sentences)
        sources.append(source)
    return sources


def _sentences_with_vectors(
    abstract: str, parts: list[tuple[int, str, ChunkMeta]]
) -> tuple[list[str], np.ndarray | None]:
    """The abstract's sentences, each with the late-chunked vector of the chunk that holds it best.

    Sentences come from the abstract itself, not from the chunks: a chunk that starts inside a
    sentence (the overlap) would otherwise add a fragment. A sentence split across chunks takes
    the vector of its longest piece. None when the chunks carry no sentence vectors.
    """
    spans = sentence_spans(abstract)
    sentences = [abstract[a:b] for a, b in spans]
    if not parts or not all(m.sent_spans is not None and m.sent_vecs is not None for _, _, m in parts):
        return sentences, None
    starts = [a for a, _ in spans]
    best: list[tuple[int, np.ndarray | None]] = [(0, None)] * len(spans)  # (covered characters, vector)
    search_from = 0
    for _, doc, meta in parts:
        body_start = doc.find("\n") + 1
        offset = abstract.find(doc[body_start:], max(0, search_from - len(doc)))
        if offset < 0:
            return sentences, None  # chunks from another version of the abstract: embed afresh
        search_from = offset
        vecs = meta.sentence_vectors()
        assert meta.sent_spans is not None and vecs is not None
        for (a, b), vec in zip(meta.sent_spans, vecs, strict=False):
            start, end = a - body_start + offset, b - body_start + offset
            k = max(0, bisect.bisect_right(starts, start) - 1)
            while k < len(spans) and spans[k][0] < end:
                covered = min(end, spans[k][1]) - max(start, spans[k][0])
                if covered > best[k][0]:
                    best[k] = (covered, vec)
                k += 1
    if any(vec is None for _, vec in best):
        return sentences, None
    return sentences, np.array([vec for _, vec in best])
