"""ask() and ask_stream(): condense → retrieve → numbered sources → answerer → verified Answer.

The steps up to the sources are one LangChain (LCEL) chain; the answerer chosen
by RAG_LLM writes and verifies the answer (see rag.answer.answerers). Whichever
backend answered, the Answer says which, and shows only verified citations.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from pydantic import ValidationError

from rag.answer.abstention import ABSTAIN_PREFIX, abstention_text
from rag.answer.answerers import Answerer, Request, Result, get_answerer
from rag.answer.condense import validate_history
from rag.answer.coverage import unknown_names
from rag.answer.followup import FollowUp, analyse, last_turns
from rag.answer.intent import detect_intent
from rag.answer.sources import Source, load_sources
from rag.config import Settings, describe_invalid
from rag.index.paper_index import PaperIndex
from rag.index.search import MAX_K, search
from rag.text import require_text, strip_control, title_matches
from rag.tokens import truncate_prompt_tokens
from rag.types import Answer, Hit

log = logging.getLogger(__name__)

MAX_QUESTION_TOKENS = 512


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


def _followup(state: dict[str, Any]) -> FollowUp:
    index: PaperIndex = state["index"]

    def similarity(a: str, b: str) -> float:
        va, vb = index.sentence_embedder.embed_array([a, b])
        return float(va @ vb)

    followup = analyse(state["question"], state["history"], similarity)
    _, last_answer = last_turns(state["history"])
    last_answer = " ".join(strip_control(last_answer).split())
    if followup.dependent and last_answer and not last_answer.startswith(ABSTAIN_PREFIX):
        followup.previous_titles = previous_titles(state["index"], last_answer, state["settings"])
    return followup


def previous_titles(index: PaperIndex, answer: str, settings: Settings) -> list[str]:
    """The papers a previous answer was about: those whose titles it names, else the one it is closest to."""
    hits = search(index, answer, 5, settings.retriever, settings=settings)
    named = title_matches(answer, {h.paper_id: h.title for h in hits}, settings.title_match_threshold)
    titles = [h.title for h in hits if h.paper_id in named]
    return titles or [h.title for h in hits[:1]]


def _condense(state: dict[str, Any]) -> str:
    followup: FollowUp = state["followup"]
    if not followup.dependent:
        return str(state["question"])
    answerer: Answerer = state["answerer"]
    return answerer.condense(state["question"], state["history"], followup, state["settings"])


def _search(state: dict[str, Any]) -> list[Hit]:
    """The sources: more papers for a list question; none the previous turn cited for a relative follow-up."""
    s: Settings = state["settings"]
    followup: FollowUp = state["followup"]
    k = max(s.top_k, s.list_k) if state["intent"] == "list" else s.top_k
    excluded = set(followup.previous_titles) if followup.relative else set()
    hits = search(state["index"], state["standalone"], min(k + len(excluded), MAX_K), s.retriever, settings=s)
    return [h for h in hits if h.title not in excluded][:k]


def _sources(state: dict[str, Any]) -> list[Source]:
    return load_sources(state["index"], state["hits"])


PREPARE = (
    RunnablePassthrough.assign(followup=RunnableLambda(_followup))
    | RunnablePassthrough.assign(standalone=RunnableLambda(_condense))
    | RunnablePassthrough.assign(intent=lambda state: detect_intent(state["question"]))
    | RunnablePassthrough.assign(hits=RunnableLambda(_search))
    | RunnablePassthrough.assign(sources=RunnableLambda(_sources))
)


def ask_stream(
    index: PaperIndex, question: str, history: list[dict[str, str]] | None = None, **overrides: Any
) -> Iterator[str | Answer]:
    """Yield the answer's text in pieces as it is generated, then the final, verified `Answer`.

    The final Answer's text is authoritative: with a chat model, markers that point
    nowhere are removed and the rest renumbered after generation.
    Overrides: `k`, `settings`, or any `Settings` field (e.g. llm="openai", chat_model=...).
    """
    s = settings_with(overrides.pop("settings", None) or index.settings, overrides)
    q = clean_question(question, s)
    turns = validate_history(history)
    answerer = get_answerer(s)
    t0 = time.perf_counter()
    with index.errors():
        state: dict[str, Any] = PREPARE.invoke(
            {"question": q, "history": turns, "settings": s, "index": index, "answerer": answerer}
        )
        unknown = unknown_names(q, index.mentions, [h.title for h in state["hits"]], s.title_match_threshold)
    t1 = time.perf_counter()
    result: Result | None = None
    if unknown:
        # Whichever backend would answer, it could only answer about something else.
        names = ", ".join(f"“{n}”" for n in unknown)
        text = abstention_text([h.title for h in state["hits"]], f"the collection never mentions {names}")
        result = Result(text, [], True)
        yield text
    else:
        request = Request(q, state["standalone"], turns, state["sources"], s, index, state["intent"], state["followup"])
        for piece in answerer.answer(request):
            if isinstance(piece, Result):
                result = piece
            else:
                yield piece
    assert result is not None, "an answerer must end with a Result"
    t2 = time.perf_counter()
    yield Answer(
        text=result.text,
        citations=[] if result.abstained else result.citations,
        abstained=result.abstained,
        sources=state["hits"],
        backend=answerer.label(s),
        timings={
            "retrieval": round(t1 - t0, 4),
            "generation": round(t2 - t1 - result.verify_seconds, 4),
            "verification": round(result.verify_seconds, 4),
        },
        question=q,
        standalone_question=state["standalone"],
        intent=state["intent"],
        excluded_titles=state["followup"].previous_titles if state["followup"].relative else [],
        dropped_citations=result.dropped,
        sentence_checks=[] if result.abstained else result.checks,
    )
