"""Answer → safe Markdown for the chat: text with markers, then the sources panel.

All corpus text and model output is escaped (HTML and Markdown) before it is
put in a message, so an abstract or answer holding `<script>` or a crafted
link shows as text. Messages hold no HTML at all; the only Markdown in them is
made here. Titles in the collapsible blocks are plain text (Gradio renders
them as text).
"""

from __future__ import annotations

import html
import re
from typing import Any

from rag.types import Answer

# Markdown's active characters; < > & are left to html.escape (entities render as the character).
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~$-])")


def escape(text: str) -> str:
    """Text that renders literally in Gradio's Markdown (no HTML, no Markdown syntax, no LaTeX)."""
    return html.escape(_MD_SPECIAL.sub(r"\\\1", text), quote=False)


def format_answer(answer: Answer) -> list[dict[str, Any]]:
    """The assistant's messages: the answer with its sources panel, then one collapsible full abstract per citation."""
    parts = [escape(answer.text)]
    if answer.citations:
        lines = ["**Sources**", ""]
        lines += [f"{n}. **{escape(c.title)}** — “{escape(c.evidence)}”" for n, c in enumerate(answer.citations, 1)]
        parts.append("\n".join(lines))
    cited = {c.paper_id for c in answer.citations}
    others = [h for h in answer.sources if h.paper_id not in cited]
    if others:
        label = "**Closest papers**" if answer.abstained else "**Also retrieved** (not cited)"
        parts.append("\n".join([label, ""] + [f"- {escape(h.title)}" for h in others]))
    notes = []
    if answer.unsupported_sentences:
        notes.append(f"{len(answer.unsupported_sentences)} sentence(s) are not supported by the abstracts they cite")
    if answer.dropped_citations:
        dropped = ", ".join(escape(d.cited) for d in answer.dropped_citations)
        notes.append(f"removed citations that are not among the sources: {dropped}")
    parts += [f"> ⚠ {n}" for n in notes]
    parts.append(f"*answered by {escape(answer.backend)} in {sum(answer.timings.values()):.2f} s*")
    messages: list[dict[str, Any]] = [{"role": "assistant", "content": "\n\n".join(parts)}]
    for n, c in enumerate(answer.citations, 1):
        messages.append(
            {
                "role": "assistant",
                "content": escape(c.abstract or c.evidence),
                "metadata": {"title": f"[{n}] Full abstract: {c.title}", "status": "done"},
            }
        )
    return messages


def format_partial(text: str) -> str:
    """A streaming draft, escaped, with a cursor."""
    return escape(text) + " ▍"


def format_error(message: str) -> str:
    return f"⚠ {escape(message)}"
