"""Light lexical tools: content terms (stemmed), overlap and numbers, shared by the answerer and checks."""

from __future__ import annotations

import re
from functools import lru_cache

from bm25s.stopwords import STOPWORDS_EN

_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9\-]*[A-Za-z0-9]|[A-Za-z]")
_NUMBER_RE = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?:\s?%|x|×)?")
# Words every question or abstract uses; they say nothing about which paper answers.
GENERIC = frozenset(
    "paper papers work study studies propose proposed show shows shown method methods approach approaches "
    "result results use used using based new novel also well can may might collection abstract abstracts "
    "authors author say says said tell explain describe describes described find found does do did "
    "question answer answers model models way ways many much one two first".split()
)
FUNCTION_WORDS = frozenset(
    "a about above after again against all am an and any are aren as at be because been before being below "
    "between both but by could couldn did didn do does doesn doing don down during each few for from further "
    "had has have having he her here hers herself him himself his how i if in into is isn it its itself just "
    "me more most my myself no nor not now of off on once only or other our ours ourselves out over own same "
    "she should so some such than that the their theirs them themselves then there these they this those "
    "through to too under until up very was wasn we were weren what when where which while who whom why will "
    "with would you your yours yourself yourselves us via whether within without across along among upon "
    "onto toward towards per vs versus etc eg ie let lets get gets got make makes made give gives given".split()
)
_STOP = frozenset(STOPWORDS_EN) | FUNCTION_WORDS | GENERIC


@lru_cache(maxsize=1)
def _stemmer():  # type: ignore[no-untyped-def]
    import Stemmer

    return Stemmer.Stemmer("english")


def content_terms(text: str) -> list[str]:
    """Stemmed, lower-cased words that carry meaning (stop and generic words removed)."""
    words = [w.lower() for w in _WORD_RE.findall(text)]
    kept = [w for w in words if w not in _STOP and len(w) > 1]
    parts = [p for w in kept for p in ([w, *w.split("-")] if "-" in w else [w]) if p and p not in _STOP]
    return list(_stemmer().stemWords(parts))


def overlap(needles: list[str], haystack: set[str]) -> float:
    """Share of `needles` found in `haystack` (0 when there are no needles)."""
    if not needles:
        return 0.0
    return sum(n in haystack for n in needles) / len(needles)


def numbers(text: str) -> set[str]:
    """The numbers a text states, normalised ("18 times" and "18x" both give "18")."""
    return {re.sub(r"[%x×\s]", "", m.group()).replace(",", "") for m in _NUMBER_RE.finditer(text)}
