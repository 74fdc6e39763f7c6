"""Hybrid search: dense (Chroma) and BM25 chunk rankings fused by reciprocal rank, one hit per paper.

A query that names a paper's title, even misspelled, is matched against the
titles with a fuzzy partial ratio and that paper is put first: neither dense
nor BM25 ranking is reliable for "tell me about <title with a typo>".
`bench/fusion_quality.py` compares dense, BM25 and fused rankings.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Literal

from rapidfuzz import fuzz, process

from rag.chunking import truncate_to_tokens
from rag.config import Settings, get_settings
from rag.embeddings import MINILM_WINDOW
from rag.index import IndexHandle, open_index, synced_lexical
from rag.store import current_digest, index_errors, reopen_client
from rag.text_norm import normalise_title, require_text, strip_control
from rag.types import Hit

log = logging.getLogger(__name__)

Retriever = Literal["hybrid", "dense", "bm25"]
_TITLE_BONUS = 1.0  # larger than any sum of RRF terms, so a named paper comes first
_MIN_TITLE_CHARS = 12
MAX_K = 50


@dataclass
class _Candidate:
    paper_id: str
    title: str
    text: str
    score: float = 0.0
    similarity: float = 0.0


_HANDLES: dict[tuple[str, ...], IndexHandle] = {}
_LOCK = threading.Lock()


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


def get_handle(settings: Settings) -> IndexHandle:
    """The open index, building it from the bundled collection on first use.

    Each call compares the collection's digest with the handle's: after an ingest
    by another process, the client is reopened so dense search sees the new chunks.
    """
    key = (
        str(settings.index_dir),
        str(settings.chroma_host),
        str(settings.chroma_port),
        settings.collection,
        settings.embedding_model,
    )
    with _LOCK:
        handle = _HANDLES.get(key)
    if handle is not None:
        if current_digest(settings) == handle.digest:
            return handle
        log.info("the index changed since it was opened (another process ingested): reloading it")
        with _LOCK:
            if _HANDLES.get(key) is handle:
                del _HANDLES[key]
                if not settings.uses_chroma_server:
                    reopen_client(settings)
    handle = open_index(settings)
    if handle is None:
        from rag.ingest import ingest

        log.warning("no index at %s yet: building it from the bundled collection", settings.index_location())
        ingest(settings=settings)
        handle = open_index(settings)
        assert handle is not None
    with _LOCK:
        _HANDLES[key] = handle
    return handle


def reset_search_cache() -> None:
    with _LOCK:
        _HANDLES.clear()


def title_matches(query: str, titles: dict[str, str], threshold: float) -> dict[str, float]:
    """paper_id -> fuzzy score for the titles (paper_id -> title) that the query names, typos allowed."""
    q = normalise_title(query)
    choices = {pid: normalise_title(t) for pid, t in titles.items()}
    choices = {pid: t for pid, t in choices.items() if _MIN_TITLE_CHARS <= len(t) <= len(q) + 3}
    found = process.extract(q, choices, scorer=fuzz.partial_ratio, score_cutoff=threshold, limit=5)
    return {pid: float(score) for _, score, pid in found}


def _add_ranking(pool: dict[str, _Candidate], ranked: list[tuple[str, str, str, float]], rrf_k: int) -> None:
    """Add one retriever's paper ranking (best chunk per paper) to the fused pool."""
    seen: set[str] = set()
    for chunk_text, paper_id, title, similarity in ranked:
        if paper_id in seen:
            continue
        seen.add(paper_id)
        cand = pool.setdefault(paper_id, _Candidate(paper_id, title, chunk_text))
        cand.score += 1.0 / (rrf_k + len(seen))
        if similarity > cand.similarity:
            cand.similarity, cand.text = similarity, chunk_text


def search(
    query: str,
    k: int | None = None,
    *,
    retriever: Retriever | None = None,
    settings: Settings | None = None,
) -> list[Hit]:
    """The `k` papers that best match `query`, best first, each with its best chunk.

    Builds the index from the bundled collection if there is none yet.
    Raises ValueError for an empty query; a very long one is cut to the model window.
    """
    s = settings or get_settings()
    k = s.top_k if k is None else k
    retriever = retriever or s.retriever
    if not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ValueError(f"k must be a whole number from 1 to {MAX_K}, not {k!r}")
    text = clean_query(query)
    with index_errors(s):
        return _search(text, k, retriever, s)


def _search(text: str, k: int, retriever: Retriever, s: Settings) -> list[Hit]:
    handle = get_handle(s)
    depth = max(4 * k, 20)
    pool: dict[str, _Candidate] = {}

    if retriever in ("hybrid", "dense"):
        vector = handle.embedder.embed_query(text)
        dense = handle.store.similarity_search_by_vector_with_relevance_scores(vector, k=depth)
        ranked = [
            (d.page_content, str(d.metadata["paper_id"]), str(d.metadata["title"]), 1.0 - dist) for d, dist in dense
        ]
        _add_ranking(pool, ranked, s.rrf_k)
    if retriever in ("hybrid", "bm25"):
        lex = synced_lexical(handle)
        lexical_hits = lex.search(text, depth)
        if lexical_hits:
            got = handle.collection.get(ids=[cid for cid, _ in lexical_hits], include=["documents", "metadatas"])
            rows = {
                cid: (doc, meta)
                for cid, doc, meta in zip(got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True)
            }
            ranked = [
                (str(rows[cid][0]), str(rows[cid][1]["paper_id"]), str(rows[cid][1]["title"]), 0.0)
                for cid, _ in lexical_hits
                if cid in rows
            ]
            _add_ranking(pool, ranked, s.rrf_k)
    if retriever == "hybrid":
        # Candidates come from both rankings (dense retrieval survives typos); a title the
        # query names outranks every fused score.
        named = title_matches(text, {pid: c.title for pid, c in pool.items()}, s.title_match_threshold)
        for paper_id, score in named.items():
            pool[paper_id].score += _TITLE_BONUS * score / 100.0
    best = sorted(pool.values(), key=lambda c: (-c.score, c.paper_id))[:k]
    return [Hit(c.paper_id, c.title, c.text, round(c.score, 6)) for c in best]
