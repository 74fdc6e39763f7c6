"""Chunks fit the model window (counted with the real tokenizer), carry the title and overlap."""

from __future__ import annotations

import itertools

import pytest

from rag.ingest.chunking import chunk_paper
from rag.ingest.corpus import load_corpus
from rag.tokens import count_tokens, truncate_to_tokens
from rag.types import Paper


@pytest.fixture(scope="module")
def papers() -> list[Paper]:
    return load_corpus()


def test_every_chunk_fits_the_window_with_title_at_head(papers: list[Paper]) -> None:
    for paper in papers:
        chunks = chunk_paper(paper)
        assert chunks, paper.title
        for chunk in chunks:
            assert chunk.text.startswith(paper.title + "\n")
            assert count_tokens(chunk.text) + 2 <= 256  # + [CLS] and [SEP]


def test_long_abstract_is_split_with_overlap_and_nothing_lost(papers: list[Paper]) -> None:
    long_one = max(papers, key=lambda p: len(p.abstract))
    chunks = chunk_paper(long_one, chunk_tokens=128, overlap=24)
    assert len(chunks) >= 4
    bodies = [c.text.split("\n", 1)[1] for c in chunks]
    for a, b in itertools.pairwise(bodies):
        assert set(a.split()[-20:]) & set(b.split()[:20]), "consecutive chunks should overlap"
    words = set(long_one.abstract.split())
    assert words <= set(" ".join(bodies).split())


def test_short_abstract_is_one_chunk_and_ids_are_content_hashes(papers: list[Paper]) -> None:
    paper = min(papers, key=lambda p: len(p.abstract))
    (chunk,) = chunk_paper(paper)
    assert chunk.text == paper.title + "\n" + paper.abstract
    assert chunk_paper(paper)[0].chunk_id == chunk.chunk_id
    edited = Paper(paper.paper_id, paper.title, paper.abstract + " Edited.")
    assert chunk_paper(edited)[0].chunk_id != chunk.chunk_id


def test_truncate_to_tokens() -> None:
    text = "universal approximation " * 400
    cut = truncate_to_tokens(text, 100)
    assert count_tokens(cut) <= 100 and text.startswith(cut) and len(cut) > 100
    assert truncate_to_tokens("short", 100) == "short"
