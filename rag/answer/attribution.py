"""Post-hoc attribution of a chat model's answer: every sentence shown rests on a source, with a checked marker.

Small models cite by title, cite nothing, or put every marker at the end. So a marker is never trusted
and never required: each sentence is matched against the sources' sentences (word overlap or sentence-vector
cosine, as the verifier computes them), and gets the marker of the source it matches best when it matches
well enough (for a sentence the model did not cite at all, in words: a similar topic is not enough); a sentence
that matches nothing is dropped, and so is one that states a number its sources do
not. The answer is withheld only when nothing survives. A "which papers…" answer is parsed line by line
("[n] what it does") into "- Title: what it does [n]"; a line with no text of its own is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from rag.answer.markers import MARKER_RE
from rag.answer.sources import Source
from rag.answer.verify import support_of
from rag.text import numbers, same_title, split_sentences

_LIST_LINE_RE = re.compile(r"^\s*(?:[-*•]|\d+[.)])?\s*")
_LIST_ITEM_RE = re.compile(r"\[(\d+)\]\s*([^\[\n]*)")
_BARE_RE = re.compile(r"[\W_]*")


@dataclass
class Attributed:
    text: str  # the answer, every sentence ending with a marker of a source it matches
    dropped: list[str] = field(default_factory=list)  # sentences shown by the model that rest on no source


def list_items(text: str) -> list[str]:
    """A "which papers…" answer as one item per source: "[n] text" items, however the model laid them out (one
    per line, several on a line, or "- text [n]" lines)."""
    items = []
    for line in (ln.strip() for ln in text.splitlines() if ln.strip()):
        body = _LIST_LINE_RE.sub("", line, count=1)
        if body.startswith("["):
            items += [f"[{n}] {rest.strip()}" for n, rest in _LIST_ITEM_RE.findall(body)]
        else:
            items.append(body)
    return items


def _markers(sentence: str, valid: set[int]) -> list[int]:
    found = [int(n) for m in MARKER_RE.finditer(sentence) for n in re.findall(r"\d+", m.group(1))]
    return [n for n in found if n in valid]


def _claim(sentence: str) -> str:
    return re.sub(r"\s+([.,;:!?])", r"\1", " ".join(MARKER_RE.sub(" ", sentence).split()))


def attribute(
    text: str,
    sources: list[Source],
    vectors: dict[str, np.ndarray],
    threshold: float,
    layout: str = "prose",
) -> Attributed:
    """The answer with each sentence attributed to a source (see the module's docstring)."""
    by_number = {s.number: s for s in sources}
    units = list_items(text) if layout == "list" else split_sentences(text)
    kept, dropped = [], []
    for unit in units:
        body = _LIST_LINE_RE.sub("", unit, count=1) if layout == "list" else unit
        claim = _claim(body)
        if _BARE_RE.fullmatch(claim) or len(claim.split()) < 3:
            dropped.append(unit)  # a bare marker, or too little to be a claim
            continue
        cited = _markers(body, set(by_number))
        scored = {n: support_of(claim, by_number[n], vectors.get(claim)) for n in (cited or by_number)}
        supported = [n for n in cited if scored[n] >= threshold]
        # A sentence the model did not cite must say in words what a source says: a similar topic is not enough.
        worded = [n for n in by_number if support_of(claim, by_number[n]) >= threshold] if not supported else []
        best = max(worded, key=lambda n: scored.get(n, 0.0), default=None)
        if not supported and best is None:
            dropped.append(unit)
            continue
        if layout == "list" and any(same_title(claim.rstrip("."), by_number[n].title, 90) for n in by_number):
            dropped.append(unit)  # a line that only repeats a title says nothing about the paper
            continue
        marks = supported or ([best] if best is not None else [])
        stated = set().union(*(numbers(by_number[n].abstract) for n in marks))
        if not numbers(claim) <= stated:
            dropped.append(unit)  # a number no cited abstract states
            continue
        shown = claim.rstrip()
        end = shown[-1] if shown[-1:] in ".!?" else "."
        shown = shown.rstrip(".!?") + " " + "".join(f"[{n}]" for n in dict.fromkeys(marks)) + end
        kept.append(f"- {by_number[marks[0]].title}: {shown}" if layout == "list" else shown)
    return Attributed(("\n" if layout == "list" else " ").join(kept), dropped)
