"""Does a question need the conversation to be understood? Conservative, and visible when it does.

A question stands alone unless it cannot be understood alone: it refers back ("it", "they", "that",
"the same", "another") and has too few words of its own to search for ("what dataset did they use?"),
or it is a bare continuation ("and the pretraining data?"). When in doubt it is searched as asked: a
standalone question is never searched with another turn's words.

What the previous answer was about comes from the conversation as data: the paper ids an assistant
turn cites (`{"role": "assistant", "content": …, "cited": [paper ids]}`), never parsed back out of text.
A dependent question is searched with those papers' titles (or, when a turn carries none, the previous
question's topic words); the searched text is shown to the user whenever it differs from the question.
A question that refers back but can stand alone is searched as asked, and the previous answer's papers
join the candidates: the answerability model decides whether one of them answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag.text import FUNCTION_WORDS, GENERIC, content_terms, named_terms

_REFERS_BACK_RE = re.compile(
    r"\b(it|its|they|them|their|theirs|this|that|these|those|he|she|his|her|such|the same|above|former|latter"
    r"|previous(?:ly)?|the (?:paper|papers|authors|study|work|method|model|approach|result|results|framework"
    r"|algorithm|technique|one|ones))\b",
    re.IGNORECASE,
)
_RELATIVE_RE = re.compile(
    r"\b(another|other|others|else|later|newer|more recent|follow-?up work|disput\w*|disagree\w*|refut\w*"
    r"|contradict\w*|alternatives?)\b",
    re.IGNORECASE,
)
_CONTINUATION_RE = re.compile(r"^\s*(and|what about|how about|and what about|also|same for|what of)\b", re.IGNORECASE)
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9\-]*[A-Za-z0-9]")
OWN_TERMS = 2  # a question with at most this many content words of its own cannot be searched alone
_CARRY_TERMS = 8


@dataclass
class FollowUp:
    """How a question relates to the conversation before it."""

    refers_back: bool = False  # uses a reference word ("it", "another"), with a conversation before it
    dependent: bool = False  # cannot be understood alone: searched with the previous turn's papers or topic
    relative: bool = False  # asks for papers other than those the previous answer cited: they are left out
    previous_question: str = ""
    previous_cited: list[str] = field(default_factory=list)  # paper ids the previous answer cited
    previous_titles: list[str] = field(default_factory=list)  # their titles (filled in by the caller)


def last_question(history: list[dict[str, object]]) -> str:
    return next((str(t["content"]) for t in reversed(history) if t["role"] == "user"), "")


def last_cited(history: list[dict[str, object]]) -> list[str]:
    """The paper ids the last assistant turn cited (none if it cited nothing or carries no ids)."""
    turn = next((t for t in reversed(history) if t["role"] == "assistant"), None)
    cited = turn.get("cited") if turn else None
    return [str(c) for c in cited] if isinstance(cited, list) else []


def own_terms(question: str) -> list[str]:
    """The question's content words: what it could be searched by on its own."""
    return content_terms(question)


def analyse(question: str, history: list[dict[str, object]]) -> FollowUp:
    """How `question` relates to `history` (the previous titles are filled in by the caller, who can read them)."""
    if not history:
        return FollowUp()
    previous, cited = last_question(history), last_cited(history)
    relative = bool(_RELATIVE_RE.search(question))
    refers = relative or bool(_REFERS_BACK_RE.search(question))
    few = len(own_terms(question)) <= OWN_TERMS and not named_terms(question)
    dependent = few and (refers or bool(_CONTINUATION_RE.search(question)))
    return FollowUp(refers, dependent, relative and bool(cited), previous, cited)


def topic_words(text: str) -> list[str]:
    """Words of `text` worth searching for, as written (not stemmed), in order, without repeats."""
    words = [w for w in _WORD_RE.findall(text) if w.lower() not in FUNCTION_WORDS | GENERIC and len(w) > 2]
    return list(dict.fromkeys(words))


def searched_text(question: str, followup: FollowUp) -> str:
    """What a question is searched as: itself, unless it cannot stand alone.

    A dependent question carries the titles of the papers the previous answer cited (a relative one, which
    leaves those papers out, carries the previous question's topic words instead), or, when the previous
    turn cited nothing, the previous question's topic words.
    """
    if not followup.dependent:
        return question
    if followup.previous_titles and not followup.relative:
        return f"{question} ({'; '.join(followup.previous_titles[:2])})"
    have = set(content_terms(question))
    carried = [w for w in topic_words(followup.previous_question) if not set(content_terms(w)) <= have]
    return f"{question} ({' '.join(carried[:_CARRY_TERMS])})" if carried else question
