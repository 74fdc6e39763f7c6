"""The conversation as a Markdown file: questions, answers and numbered references with their source files."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from rag.text import strip_control


def conversation_markdown(history: list[dict[str, Any]], sources_of: dict[str, tuple[str, ...]]) -> str:
    """Markdown of `history` (the chat's turns; an assistant turn may carry "text" and "citations").

    `sources_of` maps a paper id to the files it came from. The text is the answer as shown,
    markers included; references are numbered like the markers.
    """
    lines = ["# Ask the papers: conversation", "", f"Exported {time.strftime('%Y-%m-%d %H:%M')}.", ""]
    n = 0
    for turn in history:
        if turn.get("role") == "user":
            n += 1
            lines += [f"## {n}. {_line(turn['content'])}", ""]
            continue
        lines += [strip_control(str(turn.get("text", turn.get("content", "")))), ""]
        citations = turn.get("citations") or []
        if citations:
            lines += ["**References**", ""]
            for i, c in enumerate(citations, 1):
                files = ", ".join(sources_of.get(str(c.get("paper_id")), ())) or "unknown"
                lines.append(f"{i}. *{_line(c['title'])}* — “{_line(c['evidence'])}” (source file: {_line(files)})")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _line(text: str) -> str:
    return " ".join(strip_control(str(text)).split())


def write_export(markdown: str, folder: Path | None = None) -> Path:
    """The Markdown in a new file (in a private temporary folder unless `folder` is given)."""
    target = (
        Path(folder or tempfile.mkdtemp(prefix="rag-export-")) / f"conversation-{time.strftime('%Y%m%d-%H%M%S')}.md"
    )
    target.write_text(markdown, encoding="utf-8")
    return target
