"""The answerer seam: what writes an answer from numbered sources, chosen by RAG_LLM.

Adding a backend is one new module with a class that fits `Answerer`, plus one line in
rag.registry.ANSWERERS; `ask_stream`, the settings, the CLI and `rag eval` need no change.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from rag.registry import ANSWERERS, OFFLINE_ANSWERER, load

if TYPE_CHECKING:
    import numpy as np

    from rag.answer.answerability import AnswerabilityModel, Decision
    from rag.answer.features import QuestionFacts
    from rag.answer.followup import FollowUp
    from rag.answer.intent import Intent
    from rag.answer.sources import Source
    from rag.answer.verify import Verified
    from rag.config import Settings
    from rag.index.filters import PaperFilter
    from rag.index.paper_index import PaperIndex
    from rag.types import Citation, DroppedCitation, SentenceCheck

Turn = dict[str, object]  # {"role", "content"}; an assistant turn may carry "cited": [paper ids]

__all__ = [
    "ANSWERERS",
    "Answerer",
    "BackendError",
    "Request",
    "Result",
    "backend_name",
    "decide_request",
    "get_answerer",
    "resolve",
]


class BackendError(RuntimeError):
    """The configured answering backend failed; the message names it and the setting to check."""


@dataclass
class Request:
    """A question on its way to an answer (the typed state of its path): the question as asked and as
    searched, the conversation, what is known of the question, its vector, and the numbered sources."""

    question: str
    standalone: str  # what was searched: the question itself unless it cannot be understood alone
    history: list[Turn]
    sources: list[Source]
    settings: Settings
    index: PaperIndex
    intent: Intent
    followup: FollowUp
    facts: QuestionFacts
    qvec: np.ndarray  # the searched text's sentence vector (embedded once per question)
    where: PaperFilter | None = None  # only papers it admits are sources


@dataclass
class Result:
    """An answer as its answerer verified it: text with [n] markers, citations[n-1] for marker n."""

    text: str
    citations: list[Citation]
    abstained: bool
    dropped: list[DroppedCitation] = field(default_factory=list)
    checks: list[SentenceCheck] = field(default_factory=list)
    verify_seconds: float = 0.0  # of the answerer's time, how much went into verification
    support: dict[str, float] = field(default_factory=dict)  # paper id -> P(it answers), per source
    confidence: float = 0.0  # the best source's probability
    strength: str = ""  # "strong" or "partial" support; "" when abstained
    answered_by: str = ""  # who wrote the shown text, when not the answerer itself (the chat model's fallback)

    @classmethod
    def withheld(cls, text: str, decision: Decision, support: dict[str, float]) -> Result:
        """An abstention decided before any answer was written."""
        return cls(text, [], True, support=support, confidence=decision.best)

    @classmethod
    def answered(cls, verified: Verified, took: float, decision: Decision, support: dict[str, float]) -> Result:
        """A shown answer: its verified text and citations, with the decision's support."""
        return cls(
            verified.text,
            verified.citations,
            False,
            verified.dropped,
            verified.checks,
            took,
            support=support,
            confidence=decision.best,
            strength=decision.strength,
        )


class Answerer(Protocol):
    """Writes answers. `answer` yields text pieces as they are produced, then one `Result`."""

    @classmethod
    def configured(cls, settings: Settings) -> bool:
        """Whether RAG_LLM=auto should pick this backend (e.g. an API key or base URL is set)."""
        ...

    def label(self, settings: Settings) -> str:
        """The name users see as `Answer.backend` (never a secret)."""
        ...

    def condense(self, question: str, history: list[Turn], followup: FollowUp, settings: Settings) -> str:
        """The follow-up `question` rewritten to stand alone, for retrieval (only called when it depends on
        the previous turn: `followup.dependent`)."""
        ...

    def answer(self, request: Request) -> Iterator[str | Result]: ...


def resolve(settings: Settings) -> str:
    """The backend RAG_LLM names; for "auto", the first registered one that is configured, else offline."""
    if settings.llm != "auto":
        return settings.llm
    for name, spec in ANSWERERS.items():
        if name != OFFLINE_ANSWERER and load(spec).configured(settings):
            return name
    return OFFLINE_ANSWERER


def get_answerer(settings: Settings) -> Answerer:
    answerer: Answerer = load(ANSWERERS[resolve(settings)])()
    return answerer


def backend_name(settings: Settings) -> str:
    """What the user is shown as the answering model (never a secret)."""
    return get_answerer(settings).label(settings)


def decide_request(request: Request) -> tuple[AnswerabilityModel, Decision, dict[str, float]]:
    """The shipped model, its decision on a question's sources (with the settings' threshold overrides), and
    P(it answers) per paper id: what every answerer starts from."""
    from rag.answer.answerability import decide, load_model

    s = request.settings
    model = load_model()
    decision = decide(
        model,
        request.facts,
        request.question,
        request.sources,
        request.qvec,
        set(request.followup.previous_cited),
        s.answer.answer_threshold,
        s.answer.list_threshold,
    )
    support = {src.hit.paper_id: p for src, p in zip(request.sources, decision.probabilities, strict=True)}
    return model, decision, support
