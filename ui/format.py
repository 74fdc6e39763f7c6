"""Answer → safe Markdown for the chat: text with markers, then the sources panel.

All corpus text and model output is escaped (HTML and Markdown) before it is
put in a message, so an abstract or answer holding `<script>` or a crafted
link shows as text. Messages hold no HTML at all; the only Markdown in them is
made here. The titles of the collapsible blocks are escaped the same way:
Gradio renders them as HTML and Markdown. Bare URLs become explicit autolinks
(`<https://…>`), whose target is exactly the visible text.
"""

from __future__ import annotations

import html
import re
from typing import Any

from rag.provenance import describe, links_of
from rag.text import sentence_spans, strip_control
from rag.types import Answer, MetaValue

# Markdown's active characters; < > & are left to html.escape (entities render as the character).
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~$-])")
_URL = re.compile(r"\bhttps?://[^\s<>\"'`\\]+", re.IGNORECASE)
_URL_TRAILING = ".,:;!?*_~'\""
_WWW = re.compile(r"\bwww\.", re.IGNORECASE)


# Math renders (KaTeX, as the chat and the Library configure it) only between two pairs of invisible characters
# that `strip_control` removes from every text: nothing a paper, model or user writes can open math, so "$5 and
# $10" stays as written. Gradio keeps what is between them out of Markdown and inserts it verbatim, so math holds
# no character that means something in HTML. Math is recognised in two shapes: $…$ / $$…$$ spans (arXiv, BibTeX),
# and bare tokens with a braced sub- or superscript, as the scraped listings keep them ("w_{min}=…"); a bare "d_x"
# stays text (it cannot be told from snake_case reliably).
_MATH_OPEN, _MATH_CLOSE = "\u2063\u2062", "\u2062\u2063"  # invisible separator / invisible times
MATH_DELIMITERS: list[dict[str, str | bool]] = [{"left": _MATH_OPEN, "right": _MATH_CLOSE, "display": False}]
_MATH_CHARS = r"[A-Za-z0-9\s\\^_{}()\[\]+\-=*/.,;:|!'~]"
_DOLLAR_MATH = re.compile(r"(\$\$?)(?P<math>(?!\s)" + _MATH_CHARS + r"{1,200}?(?<!\s))\1(?!\$)")
_MATH_TOKEN = re.compile(_MATH_CHARS.replace("\\s", "") + "+")


def _math_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, LaTeX) of the math in `text`: $-delimited spans, and bare tokens like `w_{min}=max(d_x,d_y)`."""
    spans = [(m.start(), m.end(), m.group("math")) for m in _DOLLAR_MATH.finditer(text)]
    for m in re.finditer(r"\S+", text):
        start, end = m.start(), m.end()
        while end > start and (text[end - 1] in ".,;:" or (text[end - 1] == ")" and _unbalanced(text[start:end]))):
            end -= 1
        if start < end and text[start] == "(" and _unbalanced(text[start:end]):
            start += 1
        token = text[start:end]
        if (
            ("_{" in token or "^{" in token)
            and _MATH_TOKEN.fullmatch(token)
            and token.count("{") == token.count("}")
            and not any(a < end and start < b for a, b, _ in spans)
        ):
            spans.append((start, end, token))
    return sorted(spans)


def _unbalanced(token: str) -> bool:
    return token.count("(") != token.count(")")


def _escape_plain(text: str, math: bool = False) -> str:
    if math:
        out, pos = [], 0
        for start, end, latex in _math_spans(text):
            out += [_escape_plain(text[pos:start]), _MATH_OPEN, latex, _MATH_CLOSE]
            pos = end
        return "".join(out) + _escape_plain(text[pos:])
    # "www.", "scheme://" and "name@host.tld" would be auto-linked (a model's label "qwen2.5-1.5b@127.0.0.1"
    # became a mailto link): break the patterns; "&#64;" still shows "@".
    escaped = html.escape(_MD_SPECIAL.sub(r"\\\1", text), quote=False).replace("://", ":\\/\\/")
    escaped = escaped.replace("@", "&#64;")
    return _WWW.sub(lambda m: m.group(0)[:3] + "\\.", escaped)


def _url_end(url: str) -> str:
    """The URL without trailing punctuation or an unbalanced ")" (as GitHub's autolinker decides)."""
    while url:
        if url[-1] in _URL_TRAILING or (url[-1] == ")" and url.count(")") > url.count("(")):
            url = url[:-1]
        else:
            break
    return url


def escape(text: str, links: bool = True) -> str:
    """Text that renders literally in Gradio's Markdown (no HTML, no Markdown syntax).

    Control characters (NUL, ESC, ...) are removed. With `links` (prose: answers, abstracts), bare http(s)
    URLs become autolinks whose target is the visible text, and LaTeX math renders; without (titles, names),
    nothing is active.
    """
    text = strip_control(text)
    if not links:
        return _escape_plain(text)
    out, pos = [], 0
    for m in _URL.finditer(text):
        url = _url_end(m.group(0))
        if len(url) <= len(m.group(0).split("://", 1)[0]) + 3:
            continue
        out += [_escape_plain(text[pos : m.start()], math=True), f"<{url}>"]
        pos = m.start() + len(url)
    out.append(_escape_plain(text[pos:], math=True))
    return "".join(out)


def _list_body(answer: Answer) -> str | None:
    """A list answer ("- Title: sentence [n]" lines) as a Markdown list with bold titles; None if it is not one."""
    lines = answer.text.splitlines()
    if answer.abstained or answer.intent != "list" or not lines or not all(ln.startswith("- ") for ln in lines):
        return None
    items = []
    for line in lines:
        body = line[2:]
        title = next((c.title for c in answer.citations if body.startswith(c.title + ": ")), None)
        if title is None:
            items.append(f"- {escape(body)}")
        else:
            items.append(f"- **{escape(title, links=False)}**: {escape(body[len(title) + 2 :])}")
    count = f"{len(items)} paper{'s' if len(items) != 1 else ''} in the collection fit"
    return f"**{count}:**\n\n" + "\n".join(items)


def _literal(text: str) -> str:
    """Text for code spans and fences, where Markdown shows everything literally: only backticks must go."""
    return strip_control(text).replace("`", "'")


def copyable(text: str) -> str:
    """A fenced block (shown literally, with the chat's copy button) holding `text` on one line."""
    return "```text\n" + " ".join(_literal(text).split()) + "\n```"


def code_span(text: str) -> str:
    """Text in a Markdown code span: shown literally (no Markdown, HTML or autolinks)."""
    return "`" + _literal(text) + "`"


def shown_backend(label: str) -> str:
    """The answering backend as a reader understands it: the offline answerer quotes, a model is named."""
    return "offline quotes" + label.removeprefix("extractive") if label.startswith("extractive") else label


def provenance(metadata: dict[str, MetaValue]) -> str:
    """ "Authors · year · venue · https://arxiv.org/abs/…", escaped; links are autolinks to exactly what is shown."""
    parts = [escape(describe(metadata), links=False)] if describe(metadata) else []
    parts += [f"<{link}>" for link in links_of(metadata)]
    return " · ".join(parts)


def format_answer(answer: Answer, note: str = "") -> list[dict[str, Any]]:
    """The assistant's messages: the answer with its sources panel, then one collapsible full abstract per citation.

    `note`: Markdown shown first (what the papers were limited to, when a filter was set)."""
    parts = [note] if note else []
    if answer.standalone_question and answer.standalone_question != answer.question:
        # A follow-up searched with what the conversation said: show exactly what was searched.
        parts.append(f"*Searched for: “{escape(answer.standalone_question, links=False)}”*")
    parts.append(_list_body(answer) or escape(answer.text))
    if answer.excluded_titles:
        left_out = "; ".join(escape(t, links=False) for t in answer.excluded_titles)
        parts.append(f"*Leaving out the papers of the previous answer: {left_out}*")
    if answer.citations:
        lines = ["**Sources**", ""]
        earlier = {h.paper_id for h in answer.sources if h.signals.get("previous_turn")}
        for n, c in enumerate(answer.citations, 1):
            previous = " (from the previous answer)" if c.paper_id in earlier else ""
            line = f"{n}. **{escape(c.title, links=False)}**{previous} — “{escape(c.evidence)}”"
            origin = provenance(c.metadata)  # on its own line within the item (a Markdown hard break)
            lines.append(f"{line}  \n   {origin}" if origin else line)
        parts.append("\n".join(lines))
    cited = {c.paper_id for c in answer.citations}
    others = [h for h in answer.sources if h.paper_id not in cited]
    if others:
        label = "**Closest papers**" if answer.abstained else "**Also retrieved** (not cited)"
        parts.append("\n".join([label, ""] + [f"- {escape(h.title, links=False)}" for h in others]))
    notes = []
    if answer.unsupported_sentences:
        notes.append(f"{len(answer.unsupported_sentences)} sentence(s) are not supported by the abstracts they cite")
    if answer.dropped_citations:
        dropped = ", ".join(escape(d.cited, links=False) for d in answer.dropped_citations)
        notes.append(f"removed citations that are not among the sources: {dropped}")
    parts += [f"> ⚠ {n}" for n in notes]
    support = (
        f" · {answer.support} support ({answer.confidence:.0%})" if answer.support and not answer.abstained else ""
    )
    parts.append(
        f"*answered by {escape(shown_backend(answer.backend), links=False)} in {sum(answer.timings.values()):.2f} s"
        f"{support}*"
    )
    messages: list[dict[str, Any]] = [{"role": "assistant", "content": "\n\n".join(parts)}]
    for n, c in enumerate(answer.citations, 1):
        messages.append(
            {
                "role": "assistant",
                "content": "\n\n".join(
                    p
                    for p in (
                        provenance(c.metadata),
                        copyable(f"{c.title} — “{c.evidence}”"),
                        highlighted(c.abstract, c.evidence) if c.abstract else escape(c.evidence),
                    )
                    if p
                ),
                "metadata": {"title": escape(f"[{n}] Full abstract: {c.title}", links=False), "status": "done"},
            }
        )
    return messages


def highlighted(abstract: str, evidence: str) -> str:
    """The abstract, escaped, with the sentences quoted as evidence in bold: where the citation comes from."""
    quoted = " ".join(evidence.split())
    out, pos = [], 0
    for begin, end in sentence_spans(abstract):
        sentence = abstract[begin:end].strip()
        out.append(escape(abstract[pos:begin]))
        shown = escape(sentence)
        out.append(f"**{shown}**" if len(sentence) > 15 and " ".join(sentence.split()) in quoted else shown)
        pos = begin + abstract[begin:end].find(sentence) + len(sentence) if sentence else end
    out.append(escape(abstract[pos:]))
    return "".join(out)


def format_partial(text: str) -> str:
    """A streaming draft, escaped, with a cursor."""
    return escape(text).replace("\n", "  \n") + " ▍"  # a list streams line by line


def format_error(message: str) -> str:
    return f"⚠ {escape(message, links=False)}"
