"""Does a question depend on the previous turn, and which papers did that turn cite?

A standalone question is searched as asked: appending the previous turn's terms
would pull retrieval back to the old topic. A dependent one ("what data was it
trained on?") carries only the previous question's topic and the paper it was
about. A relative one ("is there another / a later paper…") also leaves out the
papers the previous turn cited, so that the answer can name new ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from rag.text import FUNCTION_WORDS, GENERIC, content_terms, named_terms

_ANAPHORA_RE = re.compile(
    r"\b(it|its|they|them|their|theirs|this|that|these|those|he|she|his|her|such|the same|above|previous(?:ly)?"
    r"|the (?:paper|papers|authors|study|work|method|model|approach|result|results|framework|algorithm|technique))\b",
    re.IGNORECASE,
)
_RELATIVE_RE = re.compile(
    r"\b(another|other|others|else|later|newer|more recent|follow-?up work|contrast(?:ing)?|disput\w*|disagree\w*"
    r"|refut\w*|challeng\w*|contradict\w*|instead|alternatives?|also)\b",
    re.IGNORECASE,
)
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9\-]*[A-Za-z0-9]")
_CARRY_TERMS = 8
_FEW_TERMS = 3  # a question with this few content terms cannot stand alone
# Sentence cosines of two questions on one topic, as written and as content words only (dev follow-ups:
# dependent ones >= .24 and >= .17, standalone ones after an unrelated turn <= .16 or <= .18).
_SAME_TOPIC = 0.2
_SAME_CONTENT = 0.15
Similarity = Callable[[str, str], float]


@dataclass
class FollowUp:
    """How a question relates to the conversation before it."""

    dependent: bool = False
    relative: bool = False  # asks for papers other than those the previous turn cited
    previous_question: str = ""
    previous_titles: list[str] = field(default_factory=list)  # papers the previous answer cited, when known


def last_turns(history: list[dict[str, str]]) -> tuple[str, str]:
    """(the previous user question, the previous answer)."""
    last_user = next((t["content"] for t in reversed(history) if t["role"] == "user"), "")
    last_answer = next((t["content"] for t in reversed(history) if t["role"] == "assistant"), "")
    return last_user, last_answer


def depends_on_previous(question: str, previous_question: str, similarity: Similarity) -> bool:
    """Whether `question` needs the previous turn to be understood.

    It does when it points back ("it", "the same", "another") and is about what the previous
    question was about (sentence cosines) or says too little to be about anything else,
    and when it names nothing and says too little to stand alone. A question that points back
    but is on another topic ("is there a paper where the same detector…" after a question on
    kernels) stands alone.
    """
    few = len(content_terms(question)) <= _FEW_TERMS
    if not (_ANAPHORA_RE.search(question) or _RELATIVE_RE.search(question)):
        return few and not named_terms(question)  # "and the pretraining data?"; not "which paper introduced YOLOv4?"
    if few:
        return True
    # Both the questions and their content words must be close: "is there a paper where the same network
    # solves PDEs?" reads like any question about networks, but shares no topic with lottery tickets.
    return (
        similarity(question, previous_question) >= _SAME_TOPIC
        and similarity(_content(question), _content(previous_question)) >= _SAME_CONTENT
    )


def _content(text: str) -> str:
    return " ".join(w for w in _WORD_RE.findall(text) if w.lower() not in FUNCTION_WORDS | GENERIC)


def analyse(question: str, history: list[dict[str, str]], similarity: Similarity) -> FollowUp:
    """How `question` relates to `history` (previous titles are filled in by the caller, who can search)."""
    if not history:
        return FollowUp()
    previous_question, _ = last_turns(history)
    if not depends_on_previous(question, previous_question, similarity):
        return FollowUp(previous_question=previous_question)
    return FollowUp(True, bool(_RELATIVE_RE.search(question)), previous_question)


def _surface_terms(text: str) -> list[str]:
    """Words of `text` worth searching for, as written (not stemmed), most frequent first."""
    words = [w for w in _WORD_RE.findall(text) if w.lower() not in FUNCTION_WORDS | GENERIC and len(w) > 2]
    return list(dict.fromkeys(words))


def condense_deterministic(question: str, followup: FollowUp) -> str:
    """The question with what it needs from the previous turn: its topic words, and the paper it was about.

    A relative follow-up does not carry the previous paper's title: it asks for other papers.
    """
    if not followup.dependent:
        return question
    have = set(content_terms(question))
    carried = [w for w in _surface_terms(followup.previous_question) if not set(content_terms(w)) <= have]
    context = " ".join(carried[:_CARRY_TERMS])
    if followup.previous_titles and not followup.relative:
        context = f"{followup.previous_titles[0]}: {context}" if context else followup.previous_titles[0]
    return f"{question} ({context})" if context else question
