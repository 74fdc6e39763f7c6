"""Citation verification as a unit: made-up markers and titles are removed and reported."""

from __future__ import annotations

import numpy as np

from rag.answer.sources import Source
from rag.answer.verify import verify, verify_quotes
from rag.config import Settings
from rag.text import content_terms
from rag.types import Hit


def source(number: int, title: str, sentences: list[str]) -> Source:
    src = Source(
        number, Hit(f"p{number}", title, title + "\n" + " ".join(sentences), 0.1), " ".join(sentences), sentences
    )
    src.terms = [set(content_terms(s)) for s in sentences]
    return src


SOURCES = [
    source(
        1,
        "Learning Universal Predictors",
        [
            "Meta-learning trains networks to learn new tasks quickly.",
            "We train transformers on Solomonoff induction data.",
        ],
    ),
    source(
        2,
        "Emergent Abilities of Large Language Models",
        [
            "Emergent abilities appear only in large models.",
            "They cannot be predicted by extrapolating smaller models.",
        ],
    ),
]


def test_out_of_range_marker_is_removed_and_reported() -> None:
    v = verify("Emergent abilities appear only in large models [2][7].", SOURCES)
    assert v.text == "Emergent abilities appear only in large models [1]."
    assert [c.title for c in v.citations] == ["Emergent Abilities of Large Language Models"]
    assert [d.cited for d in v.dropped] == ["[7]"] and "no source 7" in v.dropped[0].reason


def test_markers_are_renumbered_by_first_appearance() -> None:
    v = verify("Abilities emerge with scale [2]. Meta-learning trains networks to learn tasks quickly [1][2].", SOURCES)
    assert [c.title for c in v.citations] == [
        "Emergent Abilities of Large Language Models",
        "Learning Universal Predictors",
    ]
    assert v.text == "Abilities emerge with scale [1]. Meta-learning trains networks to learn tasks quickly [2][1]."


def test_marker_ranges_and_lists_are_understood() -> None:
    assert len(verify("Both say so [1-2].", SOURCES).citations) == 2
    assert len(verify("Both say so [1, 2].", SOURCES).citations) == 2


def test_made_up_title_is_dropped_not_cited() -> None:
    v = verify('As shown in "Attention Is All You Need", abilities emerge in large models [2].', SOURCES)
    assert [c.title for c in v.citations] == ["Emergent Abilities of Large Language Models"]
    assert (
        v.dropped[0].cited == "Attention Is All You Need" and "not among the retrieved sources" in v.dropped[0].reason
    )


def test_a_dropped_title_is_marked_in_the_text_not_left_beside_a_real_marker() -> None:
    v = verify("Abilities emerge at scale [2]. See also *Attention Is All You Need* [2].", SOURCES)
    assert "Attention Is All You Need" not in v.text
    assert v.text == "Abilities emerge at scale [1]. See also (a title not among the sources, removed) [1]."
    assert [d.cited for d in v.dropped] == ["Attention Is All You Need"]


def test_written_title_of_a_source_counts_as_a_citation() -> None:
    v = verify('The paper "Learning Universal Predictors" trains transformers on Solomonoff data.', SOURCES)
    assert [c.title for c in v.citations] == ["Learning Universal Predictors"] and not v.dropped


def test_no_citations_when_nothing_is_cited() -> None:
    v = verify("I think scaling is good.", SOURCES)
    assert v.citations == [] and v.checks == []


def test_evidence_is_the_supporting_sentence() -> None:
    v = verify("Transformers are trained on Solomonoff induction data [1].", SOURCES)
    assert v.citations[0].evidence == "We train transformers on Solomonoff induction data."


def test_unsupported_sentence_and_invented_number_are_flagged() -> None:
    v = verify(
        "Emergent abilities appear only in large models [2]. Quantum chromodynamics explains gluon confinement [1]. "
        "Emergent abilities appear in 137 large models [2].",
        SOURCES,
    )
    assert [c.supported for c in v.checks] == [True, False, False]


def test_vectors_help_support_a_paraphrase() -> None:
    sentence = "Bigger LMs gain skills that small LMs lack [1]."
    vec = np.ones(4) / 2
    src = source(1, "Emergent Abilities of Large Language Models", ["Emergent abilities appear only in large models."])
    assert not verify(sentence, [src]).checks[0].supported
    src.vectors = np.array([vec])
    assert verify(sentence, [src], {sentence: vec}).checks[0].supported


def test_math_brackets_are_not_markers() -> None:
    v = verify("Functions from [0,1]^d to R need width d+1 [2]. Index x_[1] is not a citation [1].", SOURCES)
    assert "[0,1]^d" in v.text and "x_[1]" in v.text
    assert [c.title for c in v.citations] == [
        "Emergent Abilities of Large Language Models",
        "Learning Universal Predictors",
    ]
    assert v.dropped == []


def test_quoted_sentences_keep_their_own_brackets() -> None:
    quotes = [
        ("Maps from [0,1] to [0,1] as in [12] are studied.", "We study maps from [0,1] to [0,1] as in [12].", 2),
        ("Meta-learning helps.", "Meta-learning helps.", 1),
    ]
    v = verify_quotes(quotes, SOURCES)
    assert v.text == "Maps from [0,1] to [0,1] as in [12] are studied [1]. Meta-learning helps [2]."
    assert [c.title for c in v.citations] == [
        "Emergent Abilities of Large Language Models",
        "Learning Universal Predictors",
    ]
    assert v.citations[0].evidence == "We study maps from [0,1] to [0,1] as in [12]."


def test_written_titles_are_matched_with_rag_title_match_threshold() -> None:
    text = 'The paper "Learning Universal Predictor" trains transformers on Solomonoff data.'  # one letter off
    lenient = Settings(_env_file=None, title_match_threshold=80)  # type: ignore[call-arg]
    strict = Settings(_env_file=None, title_match_threshold=100)  # type: ignore[call-arg]
    assert [c.title for c in verify(text, SOURCES, settings=lenient).citations] == ["Learning Universal Predictors"]
    assert verify(text, SOURCES, settings=strict).citations == []
