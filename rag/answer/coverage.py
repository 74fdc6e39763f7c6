"""Abstention by coverage: a question that names something the collection never mentions is not answered.

Names are what a reader cannot paraphrase away: models, datasets, metrics and
papers ("Gopher", "MMLU", "Inception Score", "GPT-NeoX-20B"), and quoted titles.
A name is known when every word of it is in the index's vocabulary (or, for a long
word, one letter or two away from a word that is: typos are common in names), or
when it is part of a retrieved paper's title. An answer to a question about an
unknown name would be about something else, however close its sentences look.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rapidfuzz import fuzz

from rag.text import named_terms, normalise_title


def unknown_names(
    question: str, knows: Callable[[str], bool], titles: Sequence[str], threshold: float = 88
) -> list[str]:
    """The names in `question` that the collection never mentions (`knows(name)`: the index's vocabulary
    has it); a name that is (nearly, typos allowed) part of one of `titles`, the retrieved papers', is known."""
    normalised = [normalise_title(t) for t in titles]

    def in_a_title(name: str) -> bool:
        n = normalise_title(name)
        return any(fuzz.partial_ratio(n, t) >= threshold for t in normalised if len(t) >= len(n))

    return [n for n in named_terms(question) if not in_a_title(n) and not knows(n)]
