"""The offline answerer: quotes the abstract sentences that answer the question, or says what is missing.

No model download and no network. Whether to answer, and from which papers, is the answerability
model's decision (rag.answer.answerability); which sentences to quote is its sentence model's. The
question's intent only shapes the answer: one line per paper for "which papers…", the best sentence of
each paper for a comparison, the best paper's best sentences otherwise. A quoted sentence that opens
with a reference ("This", "To remedy this") brings the sentence before it. Every citation is true by
construction: the sentence is quoted from the cited abstract.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import numpy as np

from rag.answer.abstention import abstention_reason
from rag.answer.answerability import AnswerabilityModel, Decision, sentence_probabilities
from rag.answer.answerers import Request, Result, Turn, decide_request
from rag.answer.features import ANAPHOR_START_RE
from rag.answer.followup import FollowUp, searched_text
from rag.answer.sources import Source
from rag.answer.verify import Layout, Verified, verify_quotes
from rag.config import Settings
from rag.text import split_sentences

_WE_RE = re.compile(r"^(?:In this (?:paper|work|note|manuscript|article|study),?\s+)?[Ww]e\b")
_OUR_RE = re.compile(r"^Our\b")
Quote = tuple[str, str, int]  # (as shown, as in the abstract, source number)


def third_person(sentence: str) -> str:
    """Abstracts speak as "we"; the answer reports what the authors say."""
    sentence = _WE_RE.sub("The authors", sentence, count=1)
    return _OUR_RE.sub("Their", sentence, count=1)


def pick_sentences(probs: np.ndarray, sentences: list[str], n: int) -> list[int]:
    """The `n` most probable sentences, each that opens with a reference brought with the one before it,
    in the abstract's order."""
    picked: set[int] = set()
    for i in [int(i) for i in np.argsort(-probs)[:n]]:
        picked.add(i)
        if i > 0 and ANAPHOR_START_RE.search(sentences[i]):
            picked.add(i - 1)
    return sorted(picked)


def compose(request: Request, model: AnswerabilityModel, decision: Decision) -> tuple[list[Quote], Layout]:
    """The quotes of an answer the model decided to give, shaped by the question's intent."""
    s, facts = request.settings.answer, request.facts
    per_paper = {"list": 1, "compare": 1, "explain": s.max_sentences}.get(facts.intent, s.max_per_paper)
    quotes: list[Quote] = []
    for i in decision.chosen:
        source: Source = request.sources[i]
        probs = sentence_probabilities(model, facts, request.question, source, request.qvec, decision.relevance[i])
        picked = [source.sentences[j] for j in pick_sentences(probs, source.sentences, per_paper)]
        if facts.intent == "list":  # one line per paper, whatever it quotes
            picked = [" ".join(picked)]
        quotes += [(third_person(sentence), sentence, source.number) for sentence in picked]
    return quotes, "list" if facts.intent == "list" else "prose"


class ExtractiveAnswerer:
    """The offline default: quotes; every citation is true by construction."""

    @classmethod
    def configured(cls, settings: Settings) -> bool:
        return True

    def label(self, settings: Settings) -> str:
        return "extractive"

    def condense(self, question: str, history: list[Turn], followup: FollowUp, settings: Settings) -> str:
        return searched_text(question, followup)

    def answer(self, request: Request) -> Iterator[str | Result]:
        model, decision, support = decide_request(request)
        if not decision.answer:
            yield (text := abstention_reason(request, model, decision))
            yield Result.withheld(text, decision, support)
            return
        result = quoted(request, model, decision, support)
        listed = request.facts.intent == "list"
        for piece in result.text.splitlines(keepends=True) if listed else split_sentences(result.text):
            yield piece if listed else piece + " "
        yield result


def quoted(request: Request, model: AnswerabilityModel, decision: Decision, support: dict[str, float]) -> Result:
    """The answer of quotes for a question the decision answers (also the chat answerer's fallback)."""
    quotes, layout = compose(request, model, decision)
    start = time.perf_counter()
    verified: Verified = verify_quotes(quotes, request.sources, layout)
    return Result.answered(verified, time.perf_counter() - start, decision, support)
