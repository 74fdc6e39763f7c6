"""Verify what an answer cites against the retrieved sources, and check each cited sentence's support.

Markers `[n]` must point at a retrieved source; titles the model writes (in
quotes or emphasis) must be among the sources. Anything else is removed from
the citations and reported as dropped, never shown as real. Valid markers are
renumbered by first appearance so that `[1]` is `citations[0]`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
from rapidfuzz import fuzz

from rag.answer.markers import MARKER_RE, with_marker
from rag.answer.sources import Source
from rag.config import Settings, get_settings
from rag.text import content_terms, normalise_title, numbers, overlap, same_title, split_sentences
from rag.types import Citation, DroppedCitation, SentenceCheck

# [3], [1, 2], [1-3]; not math such as [0,1], x_[1], [1]^d (see _is_math).
_QUOTED_RE = re.compile(r"[\"“”]([^\"“”\n]{8,300})[\"“”]|\*\*?([^*\n]{8,300})\*\*?")
UNVERIFIED_TITLE = "(a title not among the sources, removed)"
Layout = Literal["prose", "list"]


@dataclass
class Verified:
    text: str
    citations: list[Citation]
    dropped: list[DroppedCitation]
    checks: list[SentenceCheck]


def _numbers_in_marker(body: str) -> list[int]:
    out: list[int] = []
    for part in re.split(r"\s*[,;]\s*", body):
        bounds = re.split(r"\s*[-–]\s*", part)
        if len(bounds) == 2 and bounds[0].isdigit() and bounds[1].isdigit() and int(bounds[1]) - int(bounds[0]) < 20:
            out.extend(range(int(bounds[0]), int(bounds[1]) + 1))
        elif part.strip().isdigit():
            out.append(int(part))
    return out


def _title_source(candidate: str, sources: list[Source], threshold: float) -> Source | None:
    norm = normalise_title(candidate)
    best = max(sources, key=lambda s: fuzz.ratio(norm, normalise_title(s.title)), default=None)
    if best is not None and same_title(candidate, best.title, threshold):
        return best
    return None


def _looks_like_title(candidate: str) -> bool:
    words = candidate.split()
    capitalised = sum(w[:1].isupper() for w in words)
    return len(words) >= 3 and capitalised >= len(words) / 2


def verify_quotes(quotes: list[tuple[str, str, int]], sources: list[Source], layout: Layout = "prose") -> Verified:
    """Citations for an answer of quoted abstract sentences: (as shown, as in the abstract, source number).

    Built from the structure, not by parsing the text: a quoted sentence may itself
    contain brackets ("[0,1]", "as shown in [12]") that are not our markers. A "list"
    answer is one line per paper: "- Title: sentence [n]".
    """
    by_number = {s.number: s for s in sources}
    order: list[int] = []
    parts, checks = [], []
    for sentence, _, number in quotes:
        if number not in order:
            order.append(number)
        marker = order.index(number) + 1
        shown = with_marker(sentence, marker)
        checks.append(SentenceCheck(shown, (marker,), True, 1.0))
        parts.append(f"- {by_number[number].title}: {shown}" if layout == "list" else shown)
    evidence: dict[int, list[str]] = {}
    for _, original, number in quotes:
        evidence.setdefault(number, []).append(original)
    citations = [by_number[n].citation(" ".join(evidence[n])) for n in order]
    return Verified(("\n" if layout == "list" else " ").join(parts), citations, [], checks)


def verify(
    text: str,
    sources: list[Source],
    sentence_vectors: dict[str, np.ndarray] | None = None,
    settings: Settings | None = None,
) -> Verified:
    """Check markers and written titles against `sources`; renumber; attach evidence; check support.

    Thresholds (title match, support) come from `settings` (default: the environment's).
    """
    s = settings or get_settings()
    by_number = {s.number: s for s in sources}
    order: list[int] = []  # source numbers in order of first valid citation
    dropped: list[DroppedCitation] = []

    def renumber(match: re.Match[str]) -> str:
        if "0" in re.split(r"\D+", match.group(1)):
            return match.group(0)  # an interval or index such as [0,1], not a citation
        kept = []
        for n in _numbers_in_marker(match.group(1)):
            if n in by_number:
                if n not in order:
                    order.append(n)
                kept.append(order.index(n) + 1)
            else:
                dropped.append(DroppedCitation(f"[{n}]", f"there is no source {n} (there were {len(sources)})"))
        return "".join(f"[{k}]" for k in dict.fromkeys(kept))

    clean = MARKER_RE.sub(renumber, text)
    clean = re.sub(r"[ \t]+([.,;:])", r"\1", re.sub(r"[ \t]{2,}", " ", clean)).strip()

    false_titles: list[tuple[int, int]] = []
    for m in _QUOTED_RE.finditer(clean):
        candidate = (m.group(1) or m.group(2) or "").strip()
        source = _title_source(candidate, sources, s.title_match_threshold)
        if source is not None:
            if source.number not in order:
                order.append(source.number)
        elif _looks_like_title(candidate):
            dropped.append(DroppedCitation(candidate, "not among the retrieved sources"))
            false_titles.append(m.span())
    for start, end in reversed(false_titles):  # the reader must not take a false title for a real one
        clean = clean[:start] + UNVERIFIED_TITLE + clean[end:]

    checks = _check_sentences(clean, [by_number[n] for n in order], sentence_vectors or {}, s.answer.support)
    citations = [by_number[n].citation(_evidence(by_number[n], clean, k + 1)) for k, n in enumerate(order)]
    return Verified(clean, citations, dropped, checks)


def _support(sentence: str, source: Source, vector: np.ndarray | None) -> tuple[float, int]:
    """(support score, index of the best-supporting sentence) of `sentence` in `source`."""
    terms = content_terms(MARKER_RE.sub("", sentence))
    lexical = [overlap(terms, t) for t in source.terms] or [0.0]
    if vector is not None and source.vectors is not None and len(source.vectors):
        cosine = source.vectors @ vector
        combined = [max(lx, float(c)) for lx, c in zip(lexical, cosine, strict=True)]
    else:
        combined = lexical
    best = int(np.argmax(combined))
    return combined[best], best


def support_of(sentence: str, source: Source, vector: np.ndarray | None = None) -> float:
    """How well `source` supports `sentence`: the best word overlap or sentence-vector cosine of its sentences
    (without a vector: word overlap only)."""
    return _support(sentence, source, vector)[0]


def _cited_sentences(text: str, marker: int) -> list[str]:
    return [s for s in split_sentences(text) if f"[{marker}]" in s]


def _evidence(source: Source, text: str, marker: int) -> str:
    """The abstract sentence(s) of `source` that best support the answer sentences citing it."""
    picked: list[int] = []
    for sentence in _cited_sentences(text, marker) or [text]:
        _, best = _support(sentence, source, None)
        if best not in picked:
            picked.append(best)
    return " ".join(source.sentences[i] for i in sorted(picked[:2]))


def _check_sentences(
    text: str, cited: list[Source], vectors: dict[str, np.ndarray], threshold: float
) -> list[SentenceCheck]:
    checks = []
    for sentence in split_sentences(text):
        markers = tuple(int(n) for n in re.findall(r"\[(\d+)\]", sentence))
        sources = [cited[m - 1] for m in markers if 0 < m <= len(cited)]
        if not sources:
            continue
        score = max(_support(sentence, s, vectors.get(sentence))[0] for s in sources)
        stated = set().union(*(numbers(s.abstract) for s in sources))
        claimed = numbers(MARKER_RE.sub("", sentence))
        supported = score >= threshold and claimed <= stated
        checks.append(SentenceCheck(sentence, markers, supported, round(score, 3)))
    return checks
