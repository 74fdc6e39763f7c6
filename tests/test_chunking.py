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


def _bodies(paper: Paper, **kw: int) -> list[str]:
    return [c.text.split("\n", 1)[1] for c in chunk_paper(paper, **kw)]


def _shared(a: str, b: str) -> str:
    """The longest end of `a` that `b` starts with (whole words)."""
    words = a.split()
    for i in range(len(words)):
        tail = " ".join(words[i:])
        if b.startswith(tail):
            return tail
    return ""


def test_neighbouring_chunks_share_up_to_the_overlap(papers: list[Paper]) -> None:
    """Every pair of neighbours of every split bundled abstract shares text, at most `overlap` word-pieces of it."""
    split = [p for p in papers if len(chunk_paper(p)) > 1]
    assert len(split) > 50
    for paper in split:
        for a, b in itertools.pairwise(_bodies(paper)):
            shared = _shared(a, b)
            assert shared, f"{paper.title}: neighbours share nothing"
            assert count_tokens(shared) <= 32


def test_without_overlap_neighbours_share_nothing_and_nothing_is_lost(papers: list[Paper]) -> None:
    long_one = max(papers, key=lambda p: len(p.abstract))
    bodies = _bodies(long_one, chunk_tokens=128, overlap=0)
    assert len(bodies) >= 4
    assert not any(_shared(a, b) for a, b in itertools.pairwise(bodies))
    assert " ".join(bodies).split() == long_one.abstract.split()


def test_chunks_end_at_sentence_ends_when_they_can(papers: list[Paper]) -> None:
    long_one = max(papers, key=lambda p: len(p.abstract))
    bodies = _bodies(long_one, chunk_tokens=128, overlap=24)
    assert sum(b.rstrip().endswith((".", "?", "!")) for b in bodies[:-1]) >= len(bodies[:-1]) - 1


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


def test_a_very_long_title_leaves_room_for_the_abstract(papers: list[Paper]) -> None:
    """A 400-character CJK title is about 400 word-pieces: it is cut in the chunks, never the abstract."""
    base = papers[0]
    long_title = "深度学习模型的普遍近似" * 36 + "Title"
    chunks = chunk_paper(Paper("p", long_title[:400], " ".join([base.abstract] * 3)))
    assert len(chunks) >= 2
    for chunk in chunks:
        assert count_tokens(chunk.text) + 2 <= 256
        assert count_tokens(chunk.text.split("\n", 1)[0]) <= 64
    # Chunks end at sentence boundaries in the second half of their budget: over half of it is abstract.
    assert all(count_tokens(c.text.split("\n", 1)[1]) > (256 - 2 - 64) // 2 for c in chunks[:-1])
