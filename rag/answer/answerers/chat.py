"""Answers written by a chat model: OpenAI, or any OpenAI-compatible server (llama.cpp, Ollama, vLLM).

The model gets the numbered sources and must cite them as [n]; whatever it writes
is verified afterwards (markers, titles, support). When the model declines, or
nothing it wrote can be verified, while the answerability model is confident that
the sources answer, the verified quotes are shown instead and `Answer.backend`
says so. Client failures become a BackendError that names the backend and the
setting to check: nothing silently falls back to another backend.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import numpy as np

from rag.answer.abstention import abstention_reason, abstention_text
from rag.answer.answerability import AnswerabilityModel, Decision
from rag.answer.answerers import BackendError, Request, Result, Turn, decide_request
from rag.answer.answerers.extractive import quoted
from rag.answer.attribution import attribute
from rag.answer.condense import to_messages
from rag.answer.followup import FollowUp, searched_text
from rag.answer.markers import MARKER_RE
from rag.answer.prompts import ANSWER_PROMPT, CONDENSE_PROMPT, SHAPES, fit_sources, format_source, prompt_sources
from rag.answer.verify import verify
from rag.config import Settings, redact_url
from rag.text import split_sentences
from rag.tokens import ensure_tiktoken_offline
from rag.types import DroppedCitation

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

log = logging.getLogger(__name__)

# Phrases with which a model says the sources do not answer.
_MODEL_ABSTAINED = (
    "does not answer", "do not answer", "do not contain", "does not contain", "not mentioned", "no information",
    "cannot be answered", "can't be answered", "not enough information",
)  # fmt: skip


class ChatAnswerer:
    """The model writes the answer; verification keeps only what the sources back."""

    @classmethod
    def configured(cls, settings: Settings) -> bool:
        return bool(settings.openai_api_key or settings.openai_base_url)

    def label(self, settings: Settings) -> str:
        if settings.openai_base_url:
            parsed = urlsplit(redact_url(settings.openai_base_url))
            return f"openai-compatible:{settings.chat_model}@{parsed.netloc.removeprefix('***@') or parsed.path}"
        return f"openai:{settings.chat_model}"

    def condense(self, question: str, history: list[Turn], followup: FollowUp, settings: Settings) -> str:
        """The model rewrites a follow-up into a standalone question (the rule-based rewrite if unusable)."""
        if not history or not followup.dependent:
            return question
        from langchain_core.output_parsers import StrOutputParser

        chain = CONDENSE_PROMPT | chat_model(settings) | StrOutputParser()
        with backend_errors(settings):
            rewritten = chain.invoke({"history": to_messages(history), "question": question}).strip()
        if not rewritten or len(rewritten) > 4 * len(question) + 200:
            log.info("model rewrite unusable (%r); using the deterministic one", rewritten[:80])
            return searched_text(question, followup)
        return rewritten

    def answer(self, request: Request) -> Iterator[str | Result]:
        from langchain_core.output_parsers import StrOutputParser

        s = request.settings
        # The answerability model decides first, as for the offline answer: a question the collection does not
        # answer (a name it never mentions, a detail no abstract states) is not sent to the model at all.
        model, decision, support = decide_request(request)
        if not decision.answer:
            yield (text := abstention_reason(request, model, decision))
            yield Result.withheld(text, decision, support)
            return
        given = fit_sources(prompt_sources(request, model, decision), s.context_tokens, s.chat_model)
        fitted = [src for src, _ in given]
        chain = ANSWER_PROMPT | chat_model(s, streaming=True) | StrOutputParser()
        question = request.question
        if request.standalone != question:
            question = f"{question} (that is: {request.standalone})"
        pieces: list[str] = []
        with backend_errors(s):
            for piece in chain.stream(
                {
                    "sources": "\n\n".join(format_source(src, keep) for src, keep in given),
                    "shape": SHAPES[request.intent],
                    "question": question,
                }
            ):
                pieces.append(piece)
                yield piece
        start = time.perf_counter()
        raw = "".join(pieces).strip()
        log.info("the model wrote: %r", raw[:2000])
        layout = "list" if request.intent == "list" else "prose"
        if model_abstained(raw):
            why = "the model found no answer in the abstracts it was given" if raw else "the model returned nothing"
            yield self._instead(request, model, decision, support, why, time.perf_counter() - start, [])
            return
        claims = [" ".join(MARKER_RE.sub(" ", u).split()) for u in _units(raw, layout)]
        vectors = _vectors(claims, request) if any(src.vectors is not None for src in fitted) else {}
        attributed = attribute(raw, fitted, vectors, s.answer.support, layout)
        verified = verify(attributed.text, fitted, _vectors(split_sentences(attributed.text), request), s)
        # What the model cited that is not among its sources is reported, whether or not its sentence survived.
        verified.dropped = verify(raw, fitted, {}, s).dropped + verified.dropped
        took = time.perf_counter() - start
        if attributed.dropped:
            log.info("dropped %d sentence(s) that rest on no source: %r", len(attributed.dropped), attributed.dropped)
        if verified.citations:
            yield Result.answered(verified, took, decision, support)
            return
        why = "nothing the model wrote matches the abstracts it was given, so it is not shown"
        yield self._instead(request, model, decision, support, why, took, verified.dropped)

    def _instead(
        self,
        request: Request,
        model: AnswerabilityModel,
        decision: Decision,
        support: dict[str, float],
        why: str,
        took: float,
        dropped: list[DroppedCitation],
    ) -> Result:
        """What is shown when the model's answer is not: where the answerability model is confident ("strong"
        support), the verified quotes (small models decline or write unverifiable text for questions their
        sources answer); otherwise the abstention, saying why."""
        if decision.strength == "strong":
            result = quoted(request, model, decision, support)
            if result.citations:
                result.answered_by = f"extractive, as {self.label(request.settings)}'s answer could not be verified"
                result.dropped = dropped + result.dropped
                return result
        closest = [src.title for src in request.sources]
        return Result(abstention_text(closest, why), [], True, dropped, [], took, support, decision.best)


def model_abstained(raw: str) -> bool:
    """Whether the answer as a whole says the sources do not answer (not a phrase somewhere inside it)."""
    claim = " ".join(MARKER_RE.sub(" ", raw).split()).lower().strip(" .")
    if not claim:
        return True
    said_no = any(p in claim for p in _MODEL_ABSTAINED)
    return said_no and (claim.startswith(("the collection does not", "the sources do not")) or len(claim.split()) <= 12)


def _units(text: str, layout: str) -> list[str]:
    return [u for u in text.splitlines() if u.strip()] if layout == "list" else split_sentences(text)


def _vectors(texts: list[str], request: Request) -> dict[str, np.ndarray]:
    """Sentence vectors of `texts` (without their markers), keyed by the texts as given."""
    texts = [t for t in dict.fromkeys(texts) if t.strip()]
    if not texts:
        return {}
    vecs = request.index.sentence_embedder.embed_array([MARKER_RE.sub("", t) for t in texts])
    return dict(zip(texts, vecs, strict=True))


def chat_model(settings: Settings, streaming: bool = False) -> BaseChatModel:
    """The chat client, through LangChain's provider-agnostic factory (imported here: offline never loads it)."""
    from langchain.chat_models import init_chat_model

    if settings.openai_api_key is None and settings.openai_base_url is None:
        raise BackendError("RAG_LLM=openai needs OPENAI_API_KEY, or OPENAI_BASE_URL for a local server")
    ensure_tiktoken_offline()  # the client counts tokens with tiktoken
    return init_chat_model(
        settings.chat_model,
        model_provider="openai",
        api_key=settings.openai_api_key or "not-needed",
        base_url=settings.openai_base_url,
        temperature=settings.temperature,
        max_tokens=settings.max_answer_tokens,
        # Servers that ignore max_completion_tokens (llama-cpp-python's) read max_tokens.
        extra_body={"max_tokens": settings.max_answer_tokens},
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,
        streaming=streaming,
    )


@contextmanager
def backend_errors(settings: Settings) -> Iterator[None]:
    """Turn client exceptions into a BackendError that names the backend and what to check."""
    import httpx
    import openai

    from rag.local.server import server_failure

    name = ChatAnswerer().label(settings)
    where = f"OPENAI_BASE_URL={redact_url(settings.openai_base_url)}" if settings.openai_base_url else "OPENAI_API_KEY"
    try:
        yield
    except openai.AuthenticationError as exc:
        raise BackendError(f"{name} refused the credentials (401); check OPENAI_API_KEY") from exc
    except openai.APITimeoutError as exc:
        raise BackendError(
            f"{name} timed out after {settings.llm_timeout:.0f} s; check {where} or raise RAG_LLM_TIMEOUT"
        ) from exc
    except (openai.APIConnectionError, httpx.TransportError) as exc:
        # A dropped connection may be a crashed local server: say how it died rather than "unreachable".
        died = server_failure(settings.openai_base_url, settings.local_model_state_dir)
        if died:
            raise BackendError(f"{name}: the local model server {died}") from exc
        if isinstance(exc, httpx.TransportError):
            raise BackendError(f"{name} dropped the connection mid-answer ({exc}); check the server's log") from exc
        hint = " (for the bundled local model, start `rag local-model`)" if settings.openai_base_url else ""
        raise BackendError(f"{name} is unreachable; check {where}{hint}") from exc
    except openai.NotFoundError as exc:
        raise BackendError(f"{name}: model or endpoint not found (404); check RAG_CHAT_MODEL and {where}") from exc
    except openai.APIStatusError as exc:
        raise BackendError(f"{name} answered with HTTP {exc.status_code}; check {where} and the server's log") from exc
