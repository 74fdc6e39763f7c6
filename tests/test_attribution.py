"""Post-hoc attribution of a chat model's answer, on hand-made sources (no model, no index)."""

from __future__ import annotations

from rag.answer.answerers.chat import model_abstained
from rag.answer.attribution import attribute, list_items
from rag.answer.sources import Source
from rag.text import content_terms, split_sentences
from rag.types import Hit


def source(number: int, title: str, abstract: str) -> Source:
    sentences = split_sentences(abstract)
    src = Source(number, Hit(f"p{number}", title, abstract, 0.0), abstract, sentences)
    src.terms = [set(content_terms(s)) for s in sentences]
    return src


LOTTERY = source(
    1,
    "Lottery Tickets",
    "Dense networks contain sparse subnetworks that train to full accuracy in isolation. "
    "We find them by iterative magnitude pruning, keeping 20 percent of the weights.",
)
WIDTH = source(2, "Width Bounds", "We prove that ReLU networks of width 3 approximate any continuous function.")


def test_a_sentence_without_a_marker_gets_the_marker_of_the_source_it_states() -> None:
    got = attribute("Dense networks contain sparse subnetworks that train to full accuracy.", [LOTTERY, WIDTH], {}, 0.5)
    assert got.text == "Dense networks contain sparse subnetworks that train to full accuracy [1]." and not got.dropped


def test_a_wrong_marker_is_moved_and_markers_at_the_end_are_spread_over_the_sentences() -> None:
    raw = "ReLU networks of width 3 approximate any continuous function [1]. Pruning finds sparse subnetworks. [1][2]"
    got = attribute(raw, [LOTTERY, WIDTH], {}, 0.5)
    assert got.text.startswith("ReLU networks of width 3 approximate any continuous function [2].")
    assert "sparse subnetworks [1]." in got.text


def test_sentences_that_rest_on_nothing_or_state_an_unstated_number_are_dropped() -> None:
    raw = (
        "Dense networks contain sparse subnetworks that train to full accuracy [1]. "
        "This was first discovered at Google in 2019 [1]. "
        "Pruning keeps 35 percent of the weights [1]."
    )
    got = attribute(raw, [LOTTERY, WIDTH], {}, 0.5)
    assert got.text == "Dense networks contain sparse subnetworks that train to full accuracy [1]."
    assert len(got.dropped) == 2
    assert attribute("It is a well known fact of life.", [LOTTERY], {}, 0.5).text == ""  # nothing survives


def test_a_list_answer_is_one_line_per_source_and_bare_markers_are_dropped() -> None:
    raw = "[1] Finds sparse subnetworks that train to full accuracy.\n- [2]\n[1][2]\n[2] Width Bounds"
    got = attribute(raw, [LOTTERY, WIDTH], {}, 0.5, layout="list")
    assert got.text == "- Lottery Tickets: Finds sparse subnetworks that train to full accuracy [1]."
    assert list_items("[1] a b c. [2] d e f.") == ["[1] a b c.", "[2] d e f."]  # two items on one line


def test_the_model_abstains_only_when_the_answer_as_a_whole_says_so() -> None:
    assert model_abstained("The collection does not answer this.")
    assert model_abstained("The sources do not contain this information [1].")
    assert model_abstained("")
    assert not model_abstained(
        "Sparse subnetworks train to full accuracy [1]; the learning rate is not mentioned in the sources, "
        "but the pruning schedule keeps 20 percent of the weights [1]."
    )
