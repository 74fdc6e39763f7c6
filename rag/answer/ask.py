"""ask() and ask_stream(): follow-up → search → numbered sources → answerer → verified Answer.

The question travels as one typed `Request` (rag.answer.answerers): each step of the LangChain
sequence below takes it and returns it with one more part filled in, so what every step saw is
inspectable, and LangChain's callbacks (tracing, if the user turns it on) see each step. The question
is embedded once: the same vector searches the index (when the index's model makes sentence vectors
too) and scores the sources' sentences. The answerer chosen by RAG_LLM writes and verifies the answer.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Generator, Mapping
from typing import Any

from langchain_core.runnables import RunnableLambda
from pydantic import ValidationError

from rag.answer.abstention import ABSTAIN_PREFIX
from rag.answer.answerers import Answerer, Request, Result, Turn, get_answerer
from rag.answer.condense import validate_history
from rag.answer.details import asked_detail
from rag.answer.features import QuestionFacts
from rag.answer.followup import FollowUp, analyse
from rag.answer.intent import detect_intent
from rag.answer.names import unknown_names
from rag.answer.sources import load_sources
from rag.config import Settings, describe_invalid
from rag.index.filters import PaperFilter
from rag.index.paper_index import PaperIndex
from rag.index.search import MAX_K, search
from rag.text import FUNCTION_WORDS, GENERIC, content_terms, named_terms, require_text, strip_control
from rag.tokens import truncate_prompt_tokens
from rag.types import Answer, Hit

log = logging.getLogger(__name__)

MAX_QUESTION_TOKENS = 512
__all__ = ["ABSTAIN_PREFIX", "ask_stream", "clean_question", "prepare", "settings_with"]


def settings_with(settings: Settings, overrides: dict[str, Any]) -> Settings:
    """`settings` with per-call overrides; `k` means top_k. A bad value is a ValueError naming it."""
    if "k" in overrides:
        overrides["top_k"] = overrides.pop("k")
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return settings.with_overrides(**given) if given else settings
    except TypeError as exc:
        raise TypeError(f"{exc} (and k)") from None
    except ValidationError as exc:
        raise ValueError(describe_invalid(exc, {"top_k": "k"})) from None


def clean_question(question: object, settings: Settings) -> str:
    if not isinstance(question, str):
        raise ValueError(f"the question must be a string, not {type(question).__name__}")
    text = " ".join(strip_control(require_text(question, "question")).split())
    if not text:
        raise ValueError("the question is empty: ask something about the papers")
    short = truncate_prompt_tokens(text, MAX_QUESTION_TOKENS, settings.chat_model)
    if short != text:
        log.warning("question truncated from %d characters to %d tokens", len(text), MAX_QUESTION_TOKENS)
    return short


@dataclasses.dataclass
class _Start:
    """The question before any step has run."""

    question: str
    history: list[Turn]
    settings: Settings
    index: PaperIndex
    answerer: Answerer
    where: PaperFilter | None = None


def _understand(start: _Start) -> Request:
    """Whether the question needs the conversation, what it is searched as, its shape, and its vector."""
    index, q, s = start.index, start.question, start.settings
    followup = analyse(q, start.history)
    if followup.previous_cited:
        titles = {p.paper_id: p.title for p in index.papers(followup.previous_cited)}
        followup.previous_titles = [titles[i] for i in followup.previous_cited if i in titles]
    searched = start.answerer.condense(q, start.history, followup, s) if followup.dependent else q
    intent = detect_intent(q)
    qvec = index.sentence_embedder.embed_array([searched])[0]
    facts = QuestionFacts(
        intent=intent,
        detail=asked_detail(q) if intent == "detail" else None,
        names=tuple(named_terms(q)),
        unknown=(),
        terms=tuple(content_terms(searched)),
        refers_back=followup.refers_back,
    )
    return Request(q, searched, start.history, [], s, index, intent, followup, facts, qvec, start.where)


def _retrieve(request: Request) -> Request:
    """The sources: more papers for a list question; the previous answer's papers as candidates when the
    question refers back (and left out when it asks for other papers)."""
    s, followup, index = request.settings, request.followup, request.index
    k = max(s.top_k, s.list_k) if request.intent == "list" else s.top_k
    excluded = set(followup.previous_cited) if followup.relative else set()
    vector = request.qvec.tolist() if index.embedder is index.sentence_embedder else None
    wanted = min(k + len(excluded), MAX_K)
    hits = search(index, request.standalone, wanted, s.retriever, settings=s, vector=vector, where=request.where)
    hits = [h for h in hits if h.paper_id not in excluded][:k]
    if followup.refers_back and not followup.relative:
        hits += _previous_papers(index, followup, {h.paper_id for h in hits}, request.where)
    sources = load_sources(index, hits)
    texts = [f"{src.title}. {src.abstract}" for src in sources]
    unknown = tuple(unknown_names(request.facts.names, index.mentions, texts))
    weights = tuple(index.term_weights(request.standalone, FUNCTION_WORDS | GENERIC))
    facts = dataclasses.replace(request.facts, unknown=unknown, weights=weights)
    return dataclasses.replace(request, sources=sources, facts=facts)


def _previous_papers(index: PaperIndex, followup: FollowUp, have: set[str], where: PaperFilter | None) -> list[Hit]:
    """The papers the previous answer cited that the search did not find (and the filter admits), as candidates
    of their own."""
    wanted = [pid for pid in followup.previous_cited if pid not in have]
    papers = {p.paper_id: p for p in index.papers(wanted) if where is None or where.admits(p)} if wanted else {}
    return [
        Hit(pid, papers[pid].title, f"{papers[pid].title}\n{papers[pid].abstract}", 0.0, {"previous_turn": 1.0})
        for pid in wanted
        if pid in papers
    ]


PREPARE = RunnableLambda(_understand) | RunnableLambda(_retrieve)


def prepare(
    index: PaperIndex,
    question: str,
    history: list[Turn] | None = None,
    settings: Settings | None = None,
    where: PaperFilter | None = None,
) -> Request:
    """The question's path up to the answerer (for the answerability model's fitting and for inspection)."""
    s = settings or index.settings
    q = clean_question(question, s)
    with index.errors():
        request: Request = PREPARE.invoke(_Start(q, validate_history(history), s, index, get_answerer(s), where))
    return request


def ask_stream(
    index: PaperIndex,
    question: str,
    history: list[Turn] | None = None,
    where: PaperFilter | Mapping[str, Any] | None = None,
    **overrides: Any,
) -> Generator[str | Answer, None, None]:
    """Yield the answer's text in pieces as it is generated, then the final, verified `Answer`.

    The final Answer's text is authoritative: with a chat model, markers that point
    nowhere are removed and the rest renumbered after generation. `where`: answer only from the papers
    it admits (a `PaperFilter`, or a dict of its fields).
    Overrides: `k`, `settings`, or any `Settings` field (e.g. llm="openai", chat_model=...).
    """
    s = settings_with(overrides.pop("settings", None) or index.settings, overrides)
    flt = PaperFilter.of(where)
    q = clean_question(question, s)
    turns = validate_history(history)
    answerer = get_answerer(s)
    t0 = time.perf_counter()
    with index.errors():
        request: Request = PREPARE.invoke(_Start(q, turns, s, index, answerer, flt))
    t1 = time.perf_counter()
    result: Result | None = None
    first_text: float | None = None
    for piece in answerer.answer(request):
        if isinstance(piece, Result):
            result = piece
        else:
            first_text = first_text if first_text is not None else time.perf_counter() - t0
            yield piece
    assert result is not None, "an answerer must end with a Result"
    t2 = time.perf_counter()
    followup = request.followup
    yield Answer(
        text=result.text,
        citations=[] if result.abstained else result.citations,
        abstained=result.abstained,
        sources=[src.hit for src in request.sources],
        backend=result.answered_by or answerer.label(s),
        timings={
            "retrieval": round(t1 - t0, 4),
            "generation": round(t2 - t1 - result.verify_seconds, 4),
            "verification": round(result.verify_seconds, 4),
        },
        question=q,
        standalone_question=request.standalone,
        intent=request.intent,
        excluded_titles=followup.previous_titles if followup.relative else [],
        dropped_citations=result.dropped,
        sentence_checks=[] if result.abstained else result.checks,
        confidence=round(result.confidence, 4),
        support=result.strength,
        paper_support={pid: round(p, 4) for pid, p in result.support.items()},
        first_text_seconds=round(first_text if first_text is not None else t2 - t0, 4),
    )
