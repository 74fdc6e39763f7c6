"""The conversation as Markdown: questions, answers and numbered references with their provenance and files.

Every piece of paper or model text is escaped (ui.format.escape, no links), so a title such as
`*[click](javascript:…)*` or an abstract holding `![img](http://…)` stays text in any Markdown viewer.
The chat sends it to the browser, which saves it (`save_js`, also for BibTeX): nothing is written on the server.
"""

from __future__ import annotations

import time
from typing import Any

from rag.provenance import describe, links_of

from .format import escape


def conversation_markdown(history: list[dict[str, Any]]) -> str:
    """Markdown of `history` (the chat's turns; an assistant turn may carry "text" and "citations").

    The text is the answer as shown, markers included; references are numbered like the markers.
    """
    lines = ["# Ask the papers: conversation", "", f"Exported {time.strftime('%Y-%m-%d %H:%M')}.", ""]
    n = 0
    for turn in history:
        if turn.get("role") == "user":
            n += 1
            lines += [f"## {n}. {_line(turn['content'])}", ""]
            continue
        lines += [_answer(str(turn.get("text", turn.get("content", "")))), ""]
        citations = turn.get("citations") or []
        if citations:
            lines += ["**References**", ""]
            for i, c in enumerate(citations, 1):
                meta = c.get("metadata") or {}
                origin = [_line(describe(meta))] if describe(meta) else []
                origin += [f"<{link}>" for link in links_of(meta)]
                origin.append(f"source file: {_line(', '.join(c.get('sources') or ()) or 'unknown')}")
                lines.append(f"{i}. *{_line(c['title'])}* — “{_line(c['evidence'])}” ({' · '.join(origin)})")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _line(text: str) -> str:
    return " ".join(escape(str(text), links=False).split())


def _answer(text: str) -> str:
    """The answer's lines escaped; a list answer's "- " bullets stay bullets."""
    out = []
    for line in text.splitlines():
        bullet = line.startswith("- ")
        out.append(("- " if bullet else "") + _line(line[2:] if bullet else line))
    return "\n".join(out)


_MIME = {"md": "text/markdown", "bib": "application/x-bibtex"}


def save_js(extension: str, name: str = "conversation") -> str:
    """Browser code that saves the text it is given as <name>-<local time>.<extension>."""
    return f"""(text) => {{
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text], {{type: "{_MIME[extension]};charset=utf-8"}}));
  const now = new Date(Date.now() - new Date().getTimezoneOffset() * 60000).toISOString();
  link.download = "{name}-" + now.slice(0, 19).replace(/[-:]/g, "").replace("T", "-") + ".{extension}";
  document.body.appendChild(link); link.click(); link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}}"""
