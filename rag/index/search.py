"""Hybrid search: dense (Chroma) and BM25 chunk rankings fused by reciprocal rank, one hit per paper.

A query that names a paper's title, even misspelled, is matched against the
titles with a fuzzy partial ratio and that paper is put first: neither dense
nor BM25 ranking is reliable for "tell me about <title with a typo>".
`bench/search_latency.py` compares dense, BM25 and fused rankings.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from rag.config import Settings
from rag.index.errors import IndexMissing
from rag.index.filters import PaperFilter
from rag.index.records import ChunkMeta
from rag.text import named_terms, normalise_title, require_text, strip_control, title_matches
from rag.tokens import MINILM_WINDOW, truncate_to_tokens
from rag.types import Hit

if TYPE_CHECKING:
    from rag.index.paper_index import Collections, PaperIndex

log = logging.getLogger(__name__)

Retriever = Literal["hybrid", "dense", "bm25"]
RETRIEVERS: tuple[Retriever, ...] = ("hybrid", "dense", "bm25")
_TITLE_BONUS = 1.0  # larger than any sum of RRF terms, so a named paper comes first
_NAME_BONUS = 0.5  # a rare name the query uses: after a named title, before everything else
MAX_K = 50


@dataclass
class _Candidate:
    paper_id: str
    title: str
    text: str
    score: float = 0.0
    similarity: float = 0.0
    signals: dict[str, float] = field(default_factory=dict)  # what put it here: ranks, similarity, bonuses


def clean_query(query: str) -> str:
    """The query as searched: control characters removed, cut to the embedding window."""
    if not isinstance(query, str):
        raise TypeError(f"query must be a string, not {type(query).__name__}")
    text = " ".join(strip_control(require_text(query, "query")).split())
    if not text:
        raise ValueError("the query is empty: type a question or some keywords about the papers")
    if len(text) > 4 * MINILM_WINDOW:
        short = truncate_to_tokens(text, MINILM_WINDOW - 2)
        if len(short) < len(text):
            log.warning(
                "query truncated from %d to %d characters (the model reads 256 word-pieces)", len(text), len(short)
            )
        text = short
    return text


def _add_ranking(pool: dict[str, _Candidate], ranked: list[tuple[str, str, str, float]], rrf_k: int, name: str) -> None:
    """Add one retriever's paper ranking (best chunk per paper) to the fused pool; `name` labels its signals."""
    seen: set[str] = set()
    for chunk_text, paper_id, title, similarity in ranked:
        if paper_id in seen:
            continue
        seen.add(paper_id)
        cand = pool.setdefault(paper_id, _Candidate(paper_id, title, chunk_text))
        cand.score += 1.0 / (rrf_k + len(seen))
        cand.signals[f"{name}_rank"] = len(seen)
        cand.signals[f"{name}_score"] = similarity
        if similarity > cand.similarity:
            cand.similarity, cand.text = similarity, chunk_text


def _papers_naming(
    index: PaperIndex, opened: Collections, name: str, depth: int, masks: list[np.ndarray] | None
) -> dict[str, tuple[str, str]]:
    """paper id -> (title, a chunk) for the papers whose chunks contain `name` as written (as words)."""
    found = index.bm25(opened.digest).search(name, depth, masks)
    if not found:
        return {}
    needle = f" {normalise_title(name)} "
    papers: dict[str, tuple[str, str]] = {}
    for doc, chunk in _chunks(opened, [cid for cid, _ in found]).values():
        if needle in f" {normalise_title(doc)} ":
            papers.setdefault(chunk.paper_id, (chunk.title, doc))
    return papers


def _chunks(opened: Collections, ids: list[str]) -> dict[str, tuple[str, ChunkMeta]]:
    """chunk id -> (text, record) for `ids`, in the order Chroma returns them (one read)."""
    got = opened.chunks.get(ids=ids, include=["documents", "metadatas"])
    return {
        cid: (doc or "", ChunkMeta.decode(meta))
        for cid, doc, meta in zip(got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True)
    }


def search(
    index: PaperIndex,
    query: str,
    k: int | None = None,
    retriever: str | None = None,
    settings: Settings | None = None,
    vector: Sequence[float] | None = None,
    where: PaperFilter | None = None,
) -> list[Hit]:
    """The `k` papers that best match `query`, best first, each with its best chunk and the signals that
    ranked it (`Hit.signals`: dense and BM25 rank and score, title match, rare-name match).

    Defaults and knobs come from `settings` (default: the index's). `vector`: the query's embedding by
    the index's embedder, when the caller has it already. `where`: only papers it admits, in both retrievers,
    before ranking. Raises ValueError for an empty query or a `k`
    out of range; a very long query is cut to the model window; IndexMissing when there is no index.
    """
    s = settings or index.settings
    k = s.top_k if k is None else k
    retriever = retriever or s.retriever
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise ValueError(f"k must be a whole number from 1 to {MAX_K}, not {k!r}")
    if retriever not in RETRIEVERS:
        raise ValueError(f"retriever must be one of {', '.join(RETRIEVERS)}, not {retriever!r}")
    text = clean_query(query)
    with index.errors():
        return _search(index, text, k, retriever, s, vector, where)


def _search(
    index: PaperIndex,
    text: str,
    k: int,
    retriever: str,
    s: Settings,
    vector: Sequence[float] | None,
    where: PaperFilter | None,
) -> list[Hit]:
    opened = index.current()
    if opened is None:
        raise IndexMissing(f"there is no index at {index.location} yet; build it with `rag ingest`")
    depth = max(4 * k, 20)
    pool: dict[str, _Candidate] = {}
    chroma_where = where.where() if where is not None else None
    admitted = None
    if where is not None and chroma_where is not None:
        admitted = index.admitted(where, opened, index.bm25(opened.digest))
    masks = admitted.masks if admitted is not None else None

    if retriever in ("hybrid", "dense"):
        if vector is None:
            vector = index.embedder.embed_query(text)
        if admitted is not None and admitted.ids is not None and admitted.vectors is not None:
            ranked = _exact_dense(opened, admitted.ids, admitted.vectors, vector, depth)
        else:
            got = opened.chunks.query(
                query_embeddings=[vector],
                n_results=depth,
                where=chroma_where,
                include=["documents", "metadatas", "distances"],
            )
            ranked = [
                (doc or "", (c := ChunkMeta.decode(meta)).paper_id, c.title, 1.0 - float(dist))
                for doc, meta, dist in zip(
                    (got["documents"] or [[]])[0],
                    (got["metadatas"] or [[]])[0],
                    (got["distances"] or [[]])[0],
                    strict=True,
                )
            ]
        _add_ranking(pool, ranked, s.rrf_k, "dense")
    if retriever in ("hybrid", "bm25"):
        lexical_hits = index.bm25(opened.digest).search(text, depth, masks)
        if lexical_hits:
            rows = _chunks(opened, [cid for cid, _ in lexical_hits])
            top = lexical_hits[0][1] or 1.0
            ranked = [
                (rows[cid][0], rows[cid][1].paper_id, rows[cid][1].title, score / top)
                for cid, score in lexical_hits
                if cid in rows
            ]
            _add_ranking(pool, ranked, s.rrf_k, "bm25")
    if retriever == "hybrid":
        # Candidates come from both rankings (dense retrieval survives typos); a title the
        # query names outranks every fused score.
        named = title_matches(text, {pid: c.title for pid, c in pool.items()}, s.title_match_threshold)
        for paper_id, score in named.items():
            pool[paper_id].score += _TITLE_BONUS * score / 100.0
            pool[paper_id].signals["title_match"] = score / 100.0
        # A name the query uses (a model, dataset or method: "AdaRound", "YOLOv4") that few papers mention
        # is the strongest clue there is; those papers come before the rest.
        for name in named_terms(text):
            naming = _papers_naming(index, opened, name, depth, masks)
            if 0 < len(naming) <= max(k, s.list_k):
                for paper_id, (title, chunk_text) in naming.items():
                    cand = pool.setdefault(paper_id, _Candidate(paper_id, title, chunk_text))
                    cand.score += _NAME_BONUS
                    cand.signals["rare_name"] = 1.0
    best = sorted(pool.values(), key=lambda c: (-c.score, c.paper_id))[:k]
    return [Hit(c.paper_id, c.title, c.text, round(c.score, 6), c.signals) for c in best]


def _exact_dense(
    opened: Collections, ids: list[str], vectors: np.ndarray, query: Sequence[float], depth: int
) -> list[tuple[str, str, str, float]]:
    """The `depth` admitted chunks nearest to `query` by cosine similarity, by an exact scan (as Chroma ranks)."""
    if not ids:
        return []
    q = np.asarray(query, dtype=np.float32)
    similarity = vectors @ (q / max(float(np.linalg.norm(q)), 1e-12))
    top = np.argpartition(-similarity, depth - 1)[:depth] if len(ids) > depth else np.arange(len(ids))
    order = top[np.argsort(-similarity[top], kind="stable")]
    rows = _chunks(opened, [ids[i] for i in order])
    return [
        (rows[ids[i]][0], rows[ids[i]][1].paper_id, rows[ids[i]][1].title, float(similarity[i]))
        for i in order
        if ids[i] in rows
    ]


def k_value(text: str) -> int:
    """A `-k` argument (of `rag search`, `rag ask`, `rag eval`): a whole number in the range search and ask accept."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"k must be a whole number, not {text!r}") from None
    if not 1 <= value <= MAX_K:
        raise argparse.ArgumentTypeError(f"k must be from 1 to {MAX_K}, not {value}")
    return value
