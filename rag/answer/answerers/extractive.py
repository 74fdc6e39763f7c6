"""The offline answerer: picks the abstract sentences that best answer the question and cites them.

No model download and no network: sentence relevance combines the late-chunked
MiniLM sentence vectors made at ingest with lexical overlap of stemmed content
terms. Every citation is true by construction (the sentence is quoted from the
cited abstract); the checks in `rag.answer.abstention` decide when not to answer.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from rag.answer.abstention import abstention_text, asked_detail, states_detail
from rag.answer.answerers import Request, Result
from rag.answer.followup import FollowUp, condense_deterministic
from rag.answer.intent import Intent
from rag.answer.sources import Source
from rag.answer.verify import Layout, Verified, verify_quotes
from rag.config import AnswerTuning, Settings
from rag.text import content_terms, named_terms, normalise_title, overlap, split_sentences, title_matches

# Sentences that state a paper's contribution: what a "what is <title> about?" question wants.
_CONTRIBUTION_RE = re.compile(
    r"\b(we|this (paper|work|note|article|manuscript)|the authors)\s+(\w+\s+)?"
    r"(propose|present|introduce|show|study|develop|identify|extend|consider|investigate|argue|prove|establish"
    r"|demonstrate|derive|provide|analy[sz]e|find)",
    re.IGNORECASE,
)
_WE_RE = re.compile(r"^(?:In this (?:paper|work|note|manuscript|article|study),?\s+)?[Ww]e\b")
_OUR_RE = re.compile(r"^Our\b")


@dataclass
class Draft:
    """What the answerer produced before verification."""

    text: str
    abstained: bool
    reason: str = ""
    quotes: list[tuple[str, str, int]] = field(default_factory=list)  # (as shown, as in the abstract, source)
    layout: Layout = "prose"


@dataclass
class Scored:
    source: Source
    index: int
    cosine: float
    lexical: float

    @property
    def score(self) -> float:
        return 0.6 * self.cosine + 0.4 * self.lexical + 0.02 / self.source.number

    @property
    def sentence(self) -> str:
        return self.source.sentences[self.index]


def score_sentences(question: str, qvec: np.ndarray, sources: list[Source]) -> list[Scored]:
    q_terms = content_terms(question)
    scored = []
    for src in sources:
        cosines = src.vectors @ qvec if src.vectors is not None and len(src.vectors) else np.zeros(len(src.sentences))
        for j in range(len(src.sentences)):
            scored.append(Scored(src, j, float(cosines[j]), overlap(q_terms, src.terms[j])))
    return sorted(scored, key=lambda s: -s.score)


def third_person(sentence: str) -> str:
    """Abstracts speak as "we"; the answer reports what the authors say."""
    sentence = _WE_RE.sub("The authors", sentence, count=1)
    return _OUR_RE.sub("Their", sentence, count=1)


def _quote(picked: list[Scored]) -> list[tuple[str, str, int]]:
    return [(third_person(p.sentence), p.sentence, p.source.number) for p in picked]


def paper_relevance(best: Scored, q_terms: list[str], qvec: np.ndarray) -> float:
    """How well one paper answers a list question: its best sentence, how much of the question its whole
    abstract covers, and its two closest sentences (one lucky sentence is not enough)."""
    src = best.source
    coverage = overlap(q_terms, src.all_terms | set(content_terms(src.title)))
    top2 = float(np.mean(sorted(src.vectors @ qvec, reverse=True)[:2])) if src.vectors is not None else best.cosine
    return 0.5 * best.score + 0.3 * coverage + 0.2 * top2


def _list(
    question: str, qvec: np.ndarray, ranked: list[Scored], tuning: AnswerTuning, left_out: Sequence[str] = ()
) -> Draft:
    """One line per paper that answers a "which papers…" question, each with its best sentence."""
    q_terms = content_terms(question)
    best_of: dict[int, Scored] = {}
    for cand in ranked:
        best_of.setdefault(cand.source.number, cand)
    top = ranked[0].score
    picked = [
        b
        for b in best_of.values()
        if top - b.score <= tuning.list_near_best and paper_relevance(b, q_terms, qvec) >= tuning.list_min_relevance
    ]
    if not picked and left_out:  # "any other paper…?" and none is: say so rather than offer the closest
        others = "; ".join(f"“{t}”" for t in left_out)
        reason = f"it holds no paper on this besides {others}"
        return Draft(
            abstention_text([s.title for s in {c.source.number: c.source for c in ranked}.values()], reason),
            True,
            "no other paper",
        )
    picked = picked or [ranked[0]]
    # Each line says what the paper does: its contribution sentence when that is about as relevant.
    for i, b in enumerate(picked):
        own = [c for c in ranked if c.source is b.source and c.score >= b.score - 2 * tuning.near_best]
        picked[i] = next((c for c in own if _CONTRIBUTION_RE.search(c.sentence)), b)
    return Draft("\n".join(f"- {q}" for q, _, _ in _quote(picked)), False, quotes=_quote(picked), layout="list")


def _explain(ranked: list[Scored], tuning: AnswerTuning) -> list[Scored]:
    """The best paper's best sentences (up to max_sentences), in the abstract's order: an explanation reads
    as one paper's account, and its context sentences carry the terms a reader needs."""
    best = ranked[0]
    same = [c for c in ranked if c.source is best.source][: tuning.max_sentences]
    return sorted(same, key=lambda c: c.index)


def _compare(ranked: list[Scored], tuning: AnswerTuning) -> list[Scored]:
    """The best sentence of each of the (up to three) best papers that pass the bar."""
    picked: list[Scored] = []
    for cand in ranked:
        if cand.score < tuning.min_score or len(picked) == min(3, tuning.max_sentences):
            break
        if all(p.source is not cand.source for p in picked):
            picked.append(cand)
    return picked


def _lookup(ranked: list[Scored], tuning: AnswerTuning) -> list[Scored]:
    """The best sentence with the next best of its paper, and any other paper's sentence that scores as well."""
    best = ranked[0]
    picked: list[Scored] = []
    for cand in ranked:
        if len(picked) == tuning.max_sentences:
            break
        near = cand.score >= max(tuning.min_score, best.score - tuning.near_best)
        if (near or cand.source is best.source) and sum(p.source is cand.source for p in picked) < tuning.max_per_paper:
            picked.append(cand)
    return picked


def _mentioning(question: str, sources: list[Source]) -> set[int]:
    """Numbers of the (one or two) sources that use a name the question uses; empty when more do."""
    found: set[int] = set()
    for name in named_terms(question):
        needle = f" {normalise_title(name)} "
        numbers = {s.number for s in sources if needle in f" {normalise_title(s.title + ' ' + s.abstract)} "}
        if 0 < len(numbers) <= 2:
            found |= numbers
    return found if len(found) <= 2 else set()


def compose(
    question: str,
    qvec: np.ndarray,
    sources: list[Source],
    tuning: AnswerTuning,
    title_threshold: float,
    intent: Intent = "lookup",
    left_out: Sequence[str] = (),
) -> Draft:
    """An answer quoting the best sentences with [n] markers (n = source number), shaped by the question's
    intent, or an abstention."""
    closest = [s.title for s in sources]
    if not sources:
        return Draft(abstention_text([], "the index holds no papers"), True, "no sources")
    ranked = score_sentences(question, qvec, sources)
    detail = asked_detail(question) if intent != "list" else None
    if detail is not None:
        candidates = [s for s in ranked if s.cosine >= tuning.detail_min_cosine and s.source.number <= 3]
        stating = [s for s in candidates if states_detail(detail, question, s.sentence)]
        if not stating:
            what = f"the {detail.phrase}" if detail.kind == "setting" else "that detail"
            return Draft(
                abstention_text(closest, f"no retrieved abstract states {what}"), True, f"missing {detail.kind}"
            )
        ranked = stating + [s for s in ranked if s not in stating]
    named = title_matches(question, {str(s.number): s.title for s in sources}, title_threshold)
    if named and detail is None and intent != "list":
        # The question names a paper: it is about that paper, whatever its wording.
        about = [s for s in ranked if str(s.source.number) in named]
        about.sort(key=lambda s: (not _CONTRIBUTION_RE.search(s.sentence), -s.score))
        picked_named = sorted(about[: tuning.max_sentences], key=lambda s: s.index)
        return Draft(" ".join(q for q, _, _ in _quote(picked_named)), False, quotes=_quote(picked_named))
    best = ranked[0]
    weak = best.cosine < tuning.min_cosine or best.score < tuning.min_score
    if weak and detail is None and intent in ("explain", "lookup") and (mentioning := _mentioning(question, sources)):
        # "How does AdaRound work?" says too little for any sentence to look relevant, but it is about the
        # paper that names AdaRound.
        about = [s for s in ranked if s.source.number in mentioning]
        floor = about[0].score - 2 * tuning.near_best
        picked_about = [s for s in about if s.source is about[0].source and s.score >= floor][: tuning.max_sentences]
        picked_about.sort(key=lambda s: s.index)
        return Draft(" ".join(q for q, _, _ in _quote(picked_about)), False, quotes=_quote(picked_about))
    if weak:
        return Draft(abstention_text(closest, "none of the papers it holds is about this"), True, "not relevant")
    if intent == "list":
        return _list(question, qvec, ranked, tuning, left_out)
    shape = {"explain": _explain, "compare": _compare}.get(intent, _lookup)
    picked = shape(ranked, tuning) or [best]
    return Draft(" ".join(q for q, _, _ in _quote(picked)), False, quotes=_quote(picked))


class ExtractiveAnswerer:
    """The offline default: quotes; every citation is true by construction."""

    @classmethod
    def configured(cls, settings: Settings) -> bool:
        return True

    def label(self, settings: Settings) -> str:
        return "extractive"

    def condense(self, question: str, history: list[dict[str, str]], followup: FollowUp, settings: Settings) -> str:
        return condense_deterministic(question, followup)

    def answer(self, request: Request) -> Iterator[str | Result]:
        s = request.settings
        # A relative follow-up ("any other paper that…?") is answered by what it asks anew: the context it
        # carries describes the previous papers, which are left out, and would make others look relevant.
        relative = request.followup is not None and request.followup.relative
        asked = request.question if relative else request.standalone
        qvec = request.index.sentence_embedder.embed_array([asked])[0]
        left_out = request.followup.previous_titles if relative and request.followup else []
        draft = compose(asked, qvec, request.sources, s.answer, s.title_match_threshold, request.intent, left_out)
        start = time.perf_counter()
        verified = (
            Verified(draft.text, [], [], [])
            if draft.abstained
            else verify_quotes(draft.quotes, request.sources, draft.layout)
        )
        took = time.perf_counter() - start
        lines = verified.text.splitlines(keepends=True) if draft.layout == "list" else split_sentences(verified.text)
        for piece in lines:
            yield piece if draft.layout == "list" else piece + " "
        yield Result(verified.text, verified.citations, draft.abstained, verified.dropped, verified.checks, took)
