"""Reference-manager exports in: BibTeX/BibLaTeX (.bib), RIS (.ris), CSL-JSON (.json) and arXiv metadata records.

Parsed with well-kept libraries (bibtexparser with its LaTeX decoding, rispy), each into the same `Record`s
as the other formats, with the same `path:line` errors (a BibTeX entry's line, a RIS or CSL entry's number)
and limits. An entry without an abstract cannot be answered from: it is skipped and counted, not an error for
the whole file. What an entry says about its provenance becomes the paper's metadata under one vocabulary —
`authors` ("Last, First; …"), `authors_count`, `year`, `venue`, `arxiv_id`, `doi`, `url`, `categories`,
`cite_key` — whichever format carried it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.ingest.errors import CorpusError
from rag.types import MetaValue

log = logging.getLogger(__name__)

_ARXIV_ID_RE = re.compile(r"(?:arxiv[:\s/]*|abs/)?(\d{4}\.\d{4,5}|[a-z\-]+(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?", re.I)
_YEAR_RE = re.compile(r"\b(1[89]\d\d|2\d\d\d)\b")


@dataclass
class Entry:
    """One reference as its file states it, before it becomes a Record."""

    title: str
    abstract: str
    line: int
    metadata: dict[str, MetaValue] = field(default_factory=dict)


@dataclass
class Parsed:
    entries: list[Entry]
    skipped: int = 0  # entries without an abstract


def provenance(
    authors: Iterable[str] = (),
    year: object = None,
    venue: object = None,
    arxiv_id: object = None,
    doi: object = None,
    url: object = None,
    categories: object = None,
    cite_key: object = None,
) -> dict[str, MetaValue]:
    """The paper's provenance under one vocabulary (empty values left out)."""
    names = [" ".join(str(a).split()) for a in authors if str(a).strip()]
    meta: dict[str, MetaValue] = {}
    if names:
        meta["authors"] = "; ".join(names)
        meta["authors_count"] = len(names)
    found = _YEAR_RE.search(str(year)) if year not in (None, "") else None
    if found:
        meta["year"] = int(found.group(1))
    arxiv = _ARXIV_ID_RE.search(str(arxiv_id)) if arxiv_id else None
    for key, value in (
        ("venue", venue),
        ("arxiv_id", arxiv.group(1) if arxiv else None),
        ("doi", str(doi).removeprefix("https://doi.org/").strip() if doi else None),
        ("url", url),
        ("categories", categories),
        ("cite_key", cite_key),
    ):
        if value not in (None, ""):
            meta[key] = " ".join(str(value).split())
    return meta


def _kept(entries: Iterable[Entry | None], path: Path) -> Parsed:
    kept, skipped = [], 0
    for entry in entries:
        if entry is None or not entry.abstract.strip() or not entry.title.strip():
            skipped += 1
        else:
            kept.append(entry)
    if skipped:
        log.warning("%s: %d entries without a title or an abstract skipped", path, skipped)
    return Parsed(kept, skipped)


# --- BibTeX / BibLaTeX ----------------------------------------------------------------------------


def parse_bibtex(path: Path, text: str) -> Parsed:
    """A .bib file as Zotero, Mendeley or JabRef export it: LaTeX accents and braces decoded."""
    import bibtexparser
    from bibtexparser import middlewares

    library = bibtexparser.parse_string(  # type: ignore[attr-defined]
        text,
        append_middleware=[middlewares.LatexDecodingMiddleware(), middlewares.SeparateCoAuthors()],
    )
    if library.failed_blocks:
        block = library.failed_blocks[0]
        line = (block.start_line or 0) + 1
        raise CorpusError(path, line, f"not a BibTeX entry ({type(block).__name__}); fix or remove it")

    def entry(e: Any) -> Entry | None:
        fields = {k.lower(): v for k, v in e.fields_dict.items()}

        def value(*names: str) -> str:
            for name in names:
                if name in fields:
                    raw = fields[name].value
                    return "; ".join(raw) if isinstance(raw, list) else str(raw)
            return ""

        authors = fields["author"].value if "author" in fields else []
        eprint = value("eprint") if value("archiveprefix", "eprinttype").lower() in ("", "arxiv") else ""
        meta = provenance(
            authors if isinstance(authors, list) else [str(authors)],
            value("year", "date"),
            value("journal", "journaltitle", "booktitle", "publisher", "howpublished"),
            eprint or (value("url") if "arxiv.org" in value("url") else ""),
            value("doi"),
            value("url"),
            value("primaryclass", "keywords"),
            e.key,
        )
        return Entry(_clean(value("title")), _clean(value("abstract")), (e.start_line or 0) + 1, meta)

    return _kept((entry(e) for e in library.entries), path)


def _clean(text: str) -> str:
    """LaTeX leftovers the decoder keeps (protective braces) and runs of whitespace removed."""
    return " ".join(text.replace("{", "").replace("}", "").split())


# --- RIS ----------------------------------------------------------------------------------------


def parse_ris(path: Path, text: str) -> Parsed:
    """A .ris file (EndNote, Zotero, Mendeley): `AB` or `N2` abstracts."""
    import rispy

    try:
        records = rispy.loads(text)
    except Exception as exc:  # rispy raises plain IOError/ValueError variants for malformed files
        hint = "each entry starts with 'TY  - ' and ends with 'ER  - '"
        raise CorpusError(path, None, f"not a RIS file ({exc}); {hint}") from None

    def entry(number: int, r: Mapping[str, Any]) -> Entry:
        title = r.get("title") or r.get("primary_title") or r.get("translated_title") or ""
        abstract = r.get("abstract") or r.get("notes_abstract") or ""
        urls = r.get("urls") or []
        meta = provenance(
            r.get("authors") or r.get("first_authors") or [],
            r.get("year") or r.get("date") or r.get("publication_year"),
            r.get("journal_name") or r.get("secondary_title") or r.get("alternate_title1"),
            next((u for u in urls if "arxiv.org" in u), None),
            r.get("doi"),
            urls[0] if urls else None,
            "; ".join(r.get("keywords") or []) or None,
            r.get("id"),
        )
        return Entry(_clean(str(title)), _clean(str(abstract)), number, meta)

    return _kept((entry(i, r) for i, r in enumerate(records, start=1)), path)


# --- CSL-JSON ----------------------------------------------------------------------------------


def parse_csl_json(path: Path, text: str) -> Parsed:
    """A CSL-JSON file (Zotero's "Better CSL JSON"): an array of items with `title` and `abstract`."""
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorpusError(path, exc.lineno, f"invalid JSON ({exc.msg})") from None
    if isinstance(items, dict) and isinstance(items.get("items"), list):
        items = items["items"]
    if not isinstance(items, list):
        raise CorpusError(path, 1, "a .json file holds a CSL-JSON array of items with 'title' and 'abstract'")

    def entry(number: int, item: object) -> Entry:
        if not isinstance(item, dict):
            raise CorpusError(path, None, f"item {number} is not a JSON object")
        names = [
            ", ".join(p for p in (a.get("family"), a.get("given")) if p) or str(a.get("literal", ""))
            for a in item.get("author") or []
            if isinstance(a, dict)
        ]
        issued = (item.get("issued") or {}).get("date-parts") or [[None]]
        meta = provenance(
            names,
            issued[0][0] if issued and issued[0] else None,
            item.get("container-title") or item.get("publisher"),
            item.get("arxiv") or (item.get("URL") if "arxiv.org" in str(item.get("URL", "")) else None),
            item.get("DOI"),
            item.get("URL"),
            item.get("keyword"),
            item.get("citation-key") or item.get("id"),
        )
        return Entry(_clean(str(item.get("title") or "")), _clean(str(item.get("abstract") or "")), number, meta)

    return _kept((entry(i, it) for i, it in enumerate(items, start=1)), path)


# --- arXiv metadata ----------------------------------------------------------------------------

ARXIV_KEYS = frozenset({"id", "title", "abstract", "categories"})


def is_arxiv_record(row: Mapping[str, Any]) -> bool:
    """Whether a JSON object is a record of arXiv's metadata snapshot (not a plain title/abstract line)."""
    return set(row) >= ARXIV_KEYS and ("update_date" in row or "authors" in row or "versions" in row)


def arxiv_entry(row: Mapping[str, Any], line: int) -> Entry:
    """One line of the arXiv metadata snapshot: only what the index keeps (versions and parsed authors are not)."""
    authors = row.get("authors_parsed")
    names = (
        [", ".join(p for p in (a[0], a[1]) if p) for a in authors if isinstance(a, list) and a]
        if isinstance(authors, list)
        else re.split(r",\s*|\s+and\s+", str(row.get("authors") or ""))
    )
    arxiv_id = str(row.get("id") or "")
    versions = row.get("versions") or []
    first = versions[0].get("created") if versions and isinstance(versions[0], dict) else None
    meta = provenance(
        names,
        first or row.get("update_date") or row.get("year"),  # the year of the first version
        row.get("journal-ref"),
        arxiv_id,
        row.get("doi"),
        f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else None,
        row.get("categories"),
    )
    return Entry(_clean(str(row.get("title") or "")), _clean(str(row.get("abstract") or "")), line, meta)
