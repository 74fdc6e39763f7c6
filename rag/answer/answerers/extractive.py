"""The offline answerer: picks the abstract sentences that best answer the question and cites them.

No model download and no network: sentence relevance combines the late-chunked
MiniLM sentence vectors made at ingest with lexical overlap of stemmed content
terms. Every citation is true by construction (the sentence is quoted from the
cited abstract); the checks in `rag.answer.abstention` decide when not to answer.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from rag.answer.abstention import abstention_text, asked_detail, states_detail
from rag.answer.answerers import Request, Result
from rag.answer.condense import condense_deterministic
from rag.answer.sources import Source
from rag.answer.verify import Verified, verify_quotes
from rag.config import AnswerTuning, Settings
from rag.text import content_terms, overlap, split_sentences, title_matches

# Sentences that state a paper's contribution: what a "what is <title> about?" question wants.
_CONTRIBUTION_RE = re.compile(
    r"\b(we|this (paper|work|note|article|manuscript)|the authors)\s+(\w+\s+)?"
    r"(propose|present|introduce|show|study|develop|identify|extend|consider|investigate|argue)",
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


def compose(
    question: str, qvec: np.ndarray, sources: list[Source], tuning: AnswerTuning, title_threshold: float
) -> Draft:
    """An answer quoting the best sentences with [n] markers (n = source number), or an abstention."""
    closest = [s.title for s in sources]
    if not sources:
        return Draft(abstention_text([], "the index holds no papers"), True, "no sources")
    ranked = score_sentences(question, qvec, sources)
    detail = asked_detail(question)
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
    if named and detail is None:
        # The question names a paper: it is about that paper, whatever its wording.
        about = [s for s in ranked if str(s.source.number) in named]
        about.sort(key=lambda s: (not _CONTRIBUTION_RE.search(s.sentence), -s.score))
        picked_named = sorted(about[: tuning.max_per_paper], key=lambda s: s.index)
        quotes = [(third_person(p.sentence), p.sentence, p.source.number) for p in picked_named]
        return Draft(" ".join(q for q, _, _ in quotes), False, quotes=quotes)
    best = ranked[0]
    if best.cosine < tuning.min_cosine or best.score < tuning.min_score:
        return Draft(abstention_text(closest, "none of the papers it holds is about this"), True, "not relevant")
    picked: list[Scored] = []
    for cand in ranked:
        if len(picked) == tuning.max_sentences or cand.score < max(tuning.min_score, best.score - tuning.near_best):
            break
        if sum(p.source is cand.source for p in picked) < tuning.max_per_paper:
            picked.append(cand)
    quotes = [(third_person(p.sentence), p.sentence, p.source.number) for p in picked]
    return Draft(" ".join(q for q, _, _ in quotes), False, quotes=quotes)


class ExtractiveAnswerer:
    """The offline default: quotes; every citation is true by construction."""

    @classmethod
    def configured(cls, settings: Settings) -> bool:
        return True

    def label(self, settings: Settings) -> str:
        return "extractive"

    def condense(self, question: str, history: list[dict[str, str]], settings: Settings) -> str:
        return condense_deterministic(question, history)

    def answer(self, request: Request) -> Iterator[str | Result]:
        s = request.settings
        qvec = request.index.sentence_embedder.embed_array([request.standalone])[0]
        draft = compose(request.standalone, qvec, request.sources, s.answer, s.title_match_threshold)
        start = time.perf_counter()
        verified = Verified(draft.text, [], [], []) if draft.abstained else verify_quotes(draft.quotes, request.sources)
        took = time.perf_counter() - start
        for piece in split_sentences(verified.text):
            yield piece + " "
        yield Result(verified.text, verified.citations, draft.abstained, verified.dropped, verified.checks, took)
