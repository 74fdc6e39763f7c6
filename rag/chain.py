"""ask() and ask_stream(): condense → retrieve → numbered sources → generate → verify → Answer.

The steps up to the sources are one LCEL chain; generation is either the
offline answerer or `ANSWER_PROMPT | ChatOpenAI | StrOutputParser` streamed;
every answer, whichever backend wrote it, goes through the same citation
verification and support checks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import numpy as np
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from pydantic import ValidationError

from rag.abstention import ABSTAIN_PREFIX, abstention_text
from rag.citations import MARKER_RE, Verified, verify, verify_quotes
from rag.condense import condense_deterministic, condense_with_model, to_messages, validate_history
from rag.config import Settings, describe_invalid, get_settings
from rag.embeddings import MiniLMEmbedder, get_embedder
from rag.evidence import Source, load_sources
from rag.extractive import compose
from rag.llm import backend_errors, backend_name, chat_model, resolve_backend
from rag.prompts import ANSWER_PROMPT, fit_sources, format_source, truncate_prompt_tokens
from rag.retrieval import get_handle, search
from rag.sentences import split_sentences
from rag.store import index_errors
from rag.text_norm import require_text, strip_control
from rag.types import Answer, Hit

log = logging.getLogger(__name__)

MAX_QUESTION_TOKENS = 512
_MODEL_ABSTAINED = ("does not answer", "do not contain", "does not contain", "not mentioned", "no information")


def settings_with(settings: Settings | None, overrides: dict[str, Any]) -> Settings:
    """`settings` (default: the environment's) with per-call overrides; `k` means top_k."""
    s = settings or get_settings()
    if "k" in overrides:
        overrides["top_k"] = overrides.pop("k")
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return s.with_overrides(**given) if given else s
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


@lru_cache(maxsize=1)
def _own_minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def _minilm(settings: Settings) -> MiniLMEmbedder:
    """The sentence-vector model: the index's own embedder when it is MiniLM (one model in memory)."""
    embedder = get_embedder(settings)
    return embedder if isinstance(embedder, MiniLMEmbedder) else _own_minilm()


def _condense(state: dict[str, Any]) -> str:
    s: Settings = state["settings"]
    if state["history"] and resolve_backend(s) == "openai":
        return condense_with_model(state["question"], state["history"], s)
    return condense_deterministic(state["question"], state["history"])


def _search(state: dict[str, Any]) -> list[Hit]:
    s: Settings = state["settings"]
    return search(state["standalone"], k=s.top_k, settings=s)


def _sources(state: dict[str, Any]) -> list[Source]:
    sources = load_sources(get_handle(state["settings"]), state["hits"])
    for src in sources:
        if src.vectors is None and src.sentences:  # index built with another embedder: embed now
            src.vectors = _minilm(state["settings"]).embed_array(src.sentences)
    return sources


PREPARE = (
    RunnablePassthrough.assign(standalone=RunnableLambda(_condense))
    | RunnablePassthrough.assign(hits=RunnableLambda(_search))
    | RunnablePassthrough.assign(sources=RunnableLambda(_sources))
)


def ask_stream(question: str, history: list[dict[str, str]] | None = None, **overrides: Any) -> Iterator[str | Answer]:
    """Yield the answer's text in pieces as it is generated, then the final, verified `Answer`.

    The final Answer's text is authoritative: with a chat model, markers that
    point nowhere are removed and the rest renumbered after generation.
    """
    s = settings_with(overrides.pop("settings", None), overrides)
    q = clean_question(question, s)
    turns = validate_history(history)
    t0 = time.perf_counter()
    with index_errors(s):
        state: dict[str, Any] = PREPARE.invoke({"question": q, "history": turns, "settings": s})
    sources: list[Source] = state["sources"]
    standalone: str = state["standalone"]
    t1 = time.perf_counter()
    backend = resolve_backend(s)
    if backend == "extractive":
        draft = compose(standalone, _minilm(s).embed_array([standalone])[0], sources)
        t2 = time.perf_counter()
        verified = Verified(draft.text, [], [], []) if draft.abstained else verify_quotes(draft.quotes, sources)
        abstained = draft.abstained
        text = verified.text
        for piece in split_sentences(text):
            yield piece + " "
    else:
        fitted = fit_sources(sources, s.context_tokens, s.chat_model)
        chain = ANSWER_PROMPT | chat_model(s, streaming=True) | StrOutputParser()
        pieces: list[str] = []
        with backend_errors(s):
            for piece in chain.stream(
                {
                    "sources": "\n\n".join(format_source(src) for src in fitted),
                    "history": to_messages(turns),
                    "question": q if standalone == q else f"{q}\n(Standalone: {standalone})",
                }
            ):
                pieces.append(piece)
                yield piece
        t2 = time.perf_counter()
        raw = "".join(pieces).strip()
        vectors = _sentence_vectors(raw, s) if any(src.vectors is not None for src in fitted) else {}
        verified = verify(raw, fitted, vectors)
        abstained = not verified.citations or any(p in raw.lower() for p in _MODEL_ABSTAINED)
        text = verified.text
        if abstained:
            why = "the model found no answer in the retrieved abstracts" if raw else "the model returned nothing"
            if raw and not verified.citations and not any(p in raw.lower() for p in _MODEL_ABSTAINED):
                why = "the model's answer cited none of the retrieved abstracts, so it is not shown"
            text = abstention_text([src.title for src in sources], why)
    t3 = time.perf_counter()
    yield Answer(
        text=text,
        citations=[] if abstained else verified.citations,
        abstained=abstained,
        sources=state["hits"],
        backend=backend_name(s),
        timings={"retrieval": round(t1 - t0, 4), "generation": round(t2 - t1, 4), "verification": round(t3 - t2, 4)},
        question=q,
        standalone_question=standalone,
        dropped_citations=verified.dropped,
        sentence_checks=[] if abstained else verified.checks,
    )


def _sentence_vectors(text: str, settings: Settings) -> dict[str, np.ndarray]:
    sentences = split_sentences(text)
    if not sentences:
        return {}
    vecs = _minilm(settings).embed_array([MARKER_RE.sub("", s) for s in sentences])
    return dict(zip(sentences, vecs, strict=True))


def ask(question: str, history: list[dict[str, str]] | None = None, **overrides: Any) -> Answer:
    """Answer `question` from the collection, citing the papers it rests on (see `ask_stream`).

    Overrides: `k`, `settings`, or any `Settings` field (e.g. llm="openai", chat_model=...).
    Raises ValueError for an empty question or malformed history, BackendError when
    the configured model fails (never falls back to another backend).
    """
    final: Answer | None = None
    for item in ask_stream(question, history, **overrides):
        if isinstance(item, Answer):
            final = item
    assert final is not None
    return final


__all__ = ["ABSTAIN_PREFIX", "ask", "ask_stream"]
