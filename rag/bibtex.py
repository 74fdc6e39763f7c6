"""Papers and citations out as BibTeX, for the reader's reference manager.

Written with bibtexparser; text fields are LaTeX-encoded with pylatexenc (braces, `&`, `%`, `_`, accents) and
identifiers (DOI, URL, eprint) left as they are, since a reference manager reads those verbatim. Built
from the provenance vocabulary ingest normalises (`authors` "Last, First; …", `year`, `venue`, `arxiv_id`,
`doi`, `url`, `categories`, `cite_key`). An arXiv paper becomes the `@misc` with `eprint` that arXiv's own
export gives; a paper with a venue an `@article`; anything else a `@misc` that still imports cleanly.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Protocol

from bibtexparser import model
from bibtexparser.entrypoint import write_string
from bibtexparser.library import Library
from pylatexenc.latexencode import unicode_to_latex

from rag.provenance import year_of
from rag.types import MetaValue

_STOP = frozenset({"a", "an", "the", "on", "of", "for", "in", "to", "and", "with", "towards", "toward", "is"})


class Citable(Protocol):
    """A Paper or a Citation: a title, an abstract and the metadata its files gave."""

    @property
    def title(self) -> str: ...
    @property
    def abstract(self) -> str: ...
    @property
    def metadata(self) -> Mapping[str, MetaValue]: ...
    @property
    def paper_id(self) -> str: ...


def to_bibtex(papers: Iterable[Citable], abstracts: bool = True) -> str:
    """One BibTeX entry per paper (repeats of a paper id left out), keys unique within the file."""
    library = Library()
    seen: set[str] = set()
    keys: set[str] = set()
    for paper in papers:
        if paper.paper_id in seen:
            continue
        seen.add(paper.paper_id)
        key = _unique(cite_key(paper), keys)
        keys.add(key)
        library.add(_entry(paper, key, abstracts))
    if not library.entries:
        return ""
    text: str = write_string(library)
    return text.strip() + "\n"


def cite_key(paper: Citable) -> str:
    """The entry's own key if its file had one, else firstauthorYEARfirstword (as Google Scholar makes them)."""
    own = str(paper.metadata.get("cite_key", "")).strip()
    if own and re.fullmatch(r"[^\s,{}()\"#%'=~\\]+", own):
        return own
    authors = str(paper.metadata.get("authors", ""))
    surname = authors.split(";")[0].split(",")[0].split()[-1] if authors.strip() else ""
    words = [w for w in re.findall(r"[^\W_]+", _ascii(paper.title).lower()) if w not in _STOP]
    year = year_of(paper.metadata)
    word = words[0] if words else ""
    key = f"{_ascii(surname).lower()}{year or ''}{word}" if surname else f"{word}{year or ''}"
    key = re.sub(r"[^a-z0-9]", "", key)
    return key if key and not key.isdigit() else f"paper{paper.paper_id[:8]}"


def _entry(paper: Citable, key: str, abstracts: bool) -> model.Entry:
    meta = paper.metadata
    arxiv_id = str(meta.get("arxiv_id", "")).strip()
    venue = str(meta.get("venue", "")).strip()
    kind = "article" if venue and not arxiv_id else "misc"
    fields: list[tuple[str, str]] = [("title", paper.title)]
    authors = [a.strip() for a in str(meta.get("authors", "")).split(";") if a.strip()]
    if authors:
        fields.append(("author", " and ".join(authors)))
    year = year_of(meta)
    if year:
        fields.append(("year", str(year)))
    if venue:
        fields.append(("journal" if kind == "article" else "howpublished", venue))
    if arxiv_id:
        fields += [("eprint", arxiv_id), ("archiveprefix", "arXiv")]
        category = str(meta.get("categories", "")).split()
        if category:
            fields.append(("primaryclass", category[0]))
    for name in ("doi", "url"):
        value = str(meta.get(name, "")).strip()
        if value:
            fields.append((name, value))
    if not meta.get("url") and arxiv_id:
        fields.append(("url", f"https://arxiv.org/abs/{arxiv_id}"))
    if abstracts and paper.abstract:
        fields.append(("abstract", " ".join(paper.abstract.split())))
    verbatim = {"doi", "url", "eprint", "archiveprefix", "primaryclass", "year"}
    return model.Entry(
        kind, key, [model.Field(name, value if name in verbatim else _latex(value)) for name, value in fields]
    )


def _latex(text: str) -> str:
    return str(unicode_to_latex(text, non_ascii_only=False, unknown_char_warning=False))


def _unique(key: str, taken: set[str]) -> str:
    if key not in taken:
        return key
    for suffix in "abcdefghijklmnopqrstuvwxyz":
        if key + suffix not in taken:
            return key + suffix
    n = 2
    while f"{key}{n}" in taken:
        n += 1
    return f"{key}{n}"


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
