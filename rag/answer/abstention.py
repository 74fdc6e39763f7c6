"""The abstention message: says what the collection lacks, and never contradicts itself.

An answer is withheld when the answerability model gives no retrieved paper enough support
(rag.answer.answerability). The message then names what is missing: a name the collection never
mentions; a detail that papers on the topic do not state ("these papers discuss X, but none states
the learning rate"); or, when nothing is close, the papers that come nearest, called that and no more.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from rag.answer.answerability import AnswerabilityModel, Decision, would_answer_if_stated
from rag.answer.details import Detail

if TYPE_CHECKING:
    from rag.answer.answerers import Request

ABSTAIN_PREFIX = "The collection does not answer this"


def _quoted(titles: Sequence[str]) -> str:
    return "; ".join(f"“{t}”" for t in titles)


def abstention_text(closest: Sequence[str], reason: str = "") -> str:
    """The plain abstention, naming the nearest papers found."""
    text = ABSTAIN_PREFIX + (f": {reason}." if reason else ".")
    if closest:
        text += " The nearest papers it holds are: " + _quoted(closest[:3]) + "."
    return text


def explain_abstention(
    closest: Sequence[str], unknown: Sequence[str] = (), missing: str = "", on_topic: Sequence[str] = ()
) -> str:
    """Why the answer is withheld. `unknown`: names the collection never mentions; `missing`: the detail asked
    ("the learning rate"); `on_topic`: the papers that discuss the question's subject without stating it."""
    if unknown:
        return abstention_text(closest, "the collection never mentions " + ", ".join(f"“{n}”" for n in unknown))
    if missing and on_topic:
        if len(on_topic) == 1:
            return f"{ABSTAIN_PREFIX}: {_quoted(on_topic)} discusses this but does not state {missing}."
        return f"{ABSTAIN_PREFIX}: {_quoted(on_topic[:3])} discuss this, but none of them states {missing}."
    return abstention_text(closest, "no abstract it holds answers this clearly enough to quote")


def missing_phrase(detail: Detail) -> str:
    if detail.kind == "setting":
        return f"the {detail.phrase}"
    return "a formula for it" if detail.kind == "formula" else "the number asked for"


def abstention_reason(request: Request, model: AnswerabilityModel, decision: Decision) -> str:
    """The abstention message for a question the model decided not to answer: what the collection lacks."""
    sources, facts = request.sources, request.facts
    by_support = [sources[i].title for i in np.argsort([-r for r in decision.relevance])]
    if not sources:
        return abstention_text([], "the index holds no papers")
    unknown = list(facts.unknown) or [w.word for w in facts.weights if not w.known and not w.common and w.word]
    if unknown:
        return explain_abstention(by_support, unknown=unknown)
    if request.followup.relative and request.followup.previous_titles:
        others = "; ".join(f"“{t}”" for t in request.followup.previous_titles)
        return abstention_text(by_support, f"it holds no other paper on this besides {others}")
    # On topic: the question would more likely than not be answered if its papers stated the detail.
    if facts.detail is not None and would_answer_if_stated(model, decision, 0.5):
        on_topic = [
            sources[i].title for i in np.argsort([-r for r in decision.relevance]) if decision.relevance[i] >= 0.5
        ]
        return explain_abstention(by_support, missing=missing_phrase(facts.detail), on_topic=on_topic or by_support[:1])
    return explain_abstention(by_support)
