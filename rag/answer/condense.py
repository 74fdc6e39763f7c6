"""Follow-up questions → standalone questions, so that retrieval sees what "it" refers to.

A chat answerer may rewrite with its model (see answerers/chat.py). Without one,
a deterministic rewrite appends the previous turn's key terms (its question
and the answer's cited content) when the follow-up depends on it: it uses a
pronoun or comparison word, or says too little to stand alone.
"""

from __future__ import annotations

import logging
import re
from collections import Counter

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from rag.answer.markers import MARKER_RE
from rag.text import FUNCTION_WORDS, GENERIC, require_text

log = logging.getLogger(__name__)

_DEPENDENT_RE = re.compile(
    r"\b(it|its|they|them|their|this|that|these|those|he|she|the paper|the authors|the same|above|previous|"
    r"earlier|compare|compared|comparison|also|more|else|other|another|instead|same)\b",
    re.IGNORECASE,
)
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9\-]+")
_CARRY_TERMS = 12


def validate_history(history: object) -> list[dict[str, str]]:
    """The history as a list of {"role", "content"} turns; ValueError saying what is wrong otherwise."""
    if history is None:
        return []
    if not isinstance(history, list):
        raise ValueError("history must be a list of {'role': 'user'|'assistant', 'content': str} turns")
    turns = []
    for i, turn in enumerate(history):
        if not isinstance(turn, dict) or not {"role", "content"} <= set(turn):
            keys = sorted(map(str, turn)) if isinstance(turn, dict) else type(turn).__name__
            raise ValueError(f"history[{i}] must be a dict with 'role' and 'content' keys, not {keys}")
        if turn["role"] not in ("user", "assistant"):
            raise ValueError(f"history[{i}]['role'] must be 'user' or 'assistant', not {turn['role']!r}")
        content = turn["content"]
        if not isinstance(content, str):
            raise ValueError(f"history[{i}]['content'] must be a string")
        turns.append({"role": str(turn["role"]), "content": require_text(content, f"history[{i}] content")})
    return turns


def to_messages(history: list[dict[str, str]], limit: int = 6) -> list[BaseMessage]:
    messages: list[BaseMessage] = []
    for turn in history[-limit:]:
        cls = HumanMessage if turn["role"] == "user" else AIMessage
        messages.append(cls(content=turn["content"][:4000]))
    return messages


def _key_terms(text: str) -> list[str]:
    words = [w for w in _WORD_RE.findall(MARKER_RE.sub(" ", text)) if w.lower() not in FUNCTION_WORDS | GENERIC]
    return [w for w, _ in Counter(words).most_common(_CARRY_TERMS)]


def needs_context(question: str) -> bool:
    content = [w for w in _WORD_RE.findall(question) if w.lower() not in FUNCTION_WORDS | GENERIC]
    return bool(_DEPENDENT_RE.search(question)) or len(content) <= 3


def condense_deterministic(question: str, history: list[dict[str, str]]) -> str:
    if not history or not needs_context(question):
        return question
    last_user = next((t["content"] for t in reversed(history) if t["role"] == "user"), "")
    last_answer = next((t["content"] for t in reversed(history) if t["role"] == "assistant"), "")
    carried = list(dict.fromkeys(_key_terms(last_user) + _key_terms(last_answer)[: _CARRY_TERMS // 2]))
    return f"{question} ({' '.join(carried)})" if carried else question
