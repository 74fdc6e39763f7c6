"""Search quality and behaviour on the bundled collection (real embedder, real Chroma, real BM25)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rag.eval.datasets import retrieval_questions

import rag
from rag.config import Settings

# Hand-written paraphrases: they avoid the title's distinctive words where they can.
QUESTIONS = retrieval_questions()


@pytest.mark.parametrize(("question", "title"), QUESTIONS, ids=[t[:40] for _, t in QUESTIONS])
def test_expected_paper_in_top_3(bundled_settings: Settings, question: str, title: str) -> None:
    titles = [h.title for h in rag.search(question, k=3, settings=bundled_settings)]
    assert title in titles


@pytest.mark.parametrize(
    ("query", "title"),
    [
        ("Univresal Nuerons in GPT2 Langauge Models", "Universal Neurons in GPT2 Language Models"),
        ("tell me about 'Emergant Abilites of Large Languge Models'", "Emergent Abilities of Large Language Models"),
        ("what does the paper Learning withuot Forgeting propose?", "Learning without Forgetting"),
        ("Transformers can do bayesian inferance", "Transformers Can Do Bayesian Inference"),
    ],
)
def test_named_title_comes_first_even_misspelled(bundled_settings: Settings, query: str, title: str) -> None:
    assert rag.search(query, k=5, settings=bundled_settings)[0].title == title


def test_one_hit_per_paper_best_first(bundled_settings: Settings) -> None:
    hits = rag.search("universal approximation", k=10, settings=bundled_settings)
    assert len(hits) == 10
    assert len({h.paper_id for h in hits}) == 10
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(h.text.startswith(h.title + "\n") for h in hits)


@pytest.mark.parametrize("retriever", ["dense", "bm25", "hybrid"])
def test_each_retriever_works_alone(bundled_settings: Settings, retriever: str) -> None:
    hits = rag.search(
        "lottery ticket hypothesis sparse subnetworks", k=5, retriever=retriever, settings=bundled_settings
    )  # type: ignore[arg-type]
    assert any("Lottery" in h.title for h in hits)


@pytest.mark.parametrize("query", ["", "   \n\t ", "\x00\x01"])
def test_empty_query_is_a_clear_value_error(bundled_settings: Settings, query: str) -> None:
    with pytest.raises(ValueError, match="query is empty"):
        rag.search(query, settings=bundled_settings)


def test_very_long_query_is_truncated_not_a_crash(bundled_settings: Settings) -> None:
    query = "lottery tickets in randomly initialised networks " * 2100  # ~100k characters
    assert len(query) > 100_000
    hits = rag.search(query, k=3, settings=bundled_settings)
    assert any("Lottery" in h.title for h in hits)


def test_query_with_no_known_words_still_returns_dense_hits(bundled_settings: Settings) -> None:
    assert len(rag.search("zxqv wplm", k=3, settings=bundled_settings)) == 3


def test_search_builds_the_index_on_first_use(
    fresh_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no index, the first search builds one from the bundled collection (here a 12-paper stand-in)."""
    import json

    from rag.ingest import pipeline

    toy = "A Toy Model of Universality: Reverse Engineering How Networks Learn Group Operations"
    papers = sorted(rag.load_corpus(), key=lambda p: p.title != toy)[:12]  # it, and 11 others
    small = tmp_path / "bundled.jsonl"
    small.write_text("".join(json.dumps({"title": p.title, "abstract": p.abstract}) + "\n" for p in papers))
    monkeypatch.setattr(pipeline, "bundled_paths", lambda: [small])
    assert not rag.index_exists(settings=fresh_settings)
    hits = rag.search("group operations learned by small networks", k=3, settings=fresh_settings)
    assert len(rag.indexed_papers(settings=fresh_settings)) == 12
    assert toy in [h.title for h in hits]


def test_sources_are_the_abstracts_sentences_without_overlap_fragments(bundled_settings: Settings) -> None:
    """Chunks overlap mid-sentence; the numbered sources must still hold each abstract sentence once, whole."""
    from rag.answer.sources import load_sources
    from rag.index.paper_index import PaperIndex
    from rag.ingest.chunking import chunk_paper
    from rag.text import split_sentences
    from rag.types import Hit

    split = [p for p in rag.load_corpus() if len(chunk_paper(p)) > 1][:40]
    index = PaperIndex(bundled_settings)
    sources = load_sources(index, [Hit(p.paper_id, p.title, "", 0.0) for p in split])
    for paper, source in zip(split, sources, strict=True):
        assert source.sentences == split_sentences(paper.abstract), paper.title
        assert source.vectors is not None and len(source.vectors) == len(source.sentences)
    index.close()
