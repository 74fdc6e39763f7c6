"""The conversation as callers pass it: validated turns, and the same turns as chat messages.

A turn is {"role": "user" | "assistant", "content": str}; an assistant turn may also carry "cited", the
paper ids its answer cited (as `Answer.citations[i].paper_id`): that is how a follow-up knows what the
previous answer was about. Whether a question depends on the turns is rag.answer.followup's job.
"""

from __future__ import annotations

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from rag.text import require_text


def validate_history(history: object) -> list[dict[str, object]]:
    """The history as a list of {"role", "content"[, "cited"]} turns; ValueError saying what is wrong otherwise."""
    if history is None:
        return []
    if not isinstance(history, list):
        raise ValueError("history must be a list of {'role': 'user'|'assistant', 'content': str} turns")
    turns: list[dict[str, object]] = []
    for i, turn in enumerate(history):
        if not isinstance(turn, dict) or not {"role", "content"} <= set(turn):
            keys = sorted(map(str, turn)) if isinstance(turn, dict) else type(turn).__name__
            raise ValueError(f"history[{i}] must be a dict with 'role' and 'content' keys, not {keys}")
        if turn["role"] not in ("user", "assistant"):
            raise ValueError(f"history[{i}]['role'] must be 'user' or 'assistant', not {turn['role']!r}")
        content = turn["content"]
        if not isinstance(content, str):
            raise ValueError(f"history[{i}]['content'] must be a string")
        clean: dict[str, object] = {
            "role": str(turn["role"]),
            "content": require_text(content, f"history[{i}] content"),
        }
        cited = turn.get("cited")
        if cited is not None:
            if not isinstance(cited, list | tuple) or not all(isinstance(c, str) for c in cited):
                raise ValueError(f"history[{i}]['cited'] must be a list of paper ids (strings)")
            clean["cited"] = list(cited)
        turns.append(clean)
    return turns


def to_messages(history: list[dict[str, object]], limit: int = 6) -> list[BaseMessage]:
    messages: list[BaseMessage] = []
    for turn in history[-limit:]:
        cls = HumanMessage if turn["role"] == "user" else AIMessage
        messages.append(cls(content=str(turn["content"])[:4000]))
    return messages
