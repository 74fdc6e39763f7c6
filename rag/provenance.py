"""Where a paper comes from, as a reader sees it: authors, year, venue and links, from the provenance vocabulary
ingest normalises (`authors` "Last, First; …", `authors_count`, `year` or a listing's `date`, `venue`,
`arxiv_id`, `doi`, `url`). The CLI, the chat and the exports all show it the same way.

A link is shown as the address it opens: an arXiv id and a DOI become their canonical https address, a `url`
only when it is one (http or https, no spaces), so the text on screen is exactly where a click goes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from rag.types import MetaValue

_DATE_YEAR = re.compile(r"\b(1[89]\d\d|2\d\d\d)\b")
_ARXIV_ID = re.compile(r"(\d{4}\.\d{4,5}|[a-z\-]+(?:\.[A-Z]{2})?/\d{7})(v\d+)?")
_DOI = re.compile(r"10\.\d{4,9}/[^\s\"<>]+")
_URL = re.compile(r"https?://[^\s\"<>`\\]+", re.IGNORECASE)


def year_of(metadata: Mapping[str, MetaValue]) -> int | None:
    """The paper's year: its `year`, or the year in its `date` (the bundled listings carry dates)."""
    for key in ("year", "date", "update_date"):
        found = _DATE_YEAR.search(str(metadata.get(key, "")))
        if found:
            return int(found.group(1))
    return None


def authors_of(metadata: Mapping[str, MetaValue], most: int = 3) -> str:
    """ "First Last, First Last et al." (up to `most` names), "3 authors" when only counted, else ""."""
    names = [_first_last(a) for a in str(metadata.get("authors", "")).split(";") if a.strip()]
    counted = str(metadata.get("authors_count", ""))
    total = max(len(names), int(counted) if counted.isdigit() else 0)
    if not names:  # a listing that counted its authors without naming them
        return f"{total} author{'s' if total != 1 else ''}" if total else ""
    shown = ", ".join(names[:most])
    return shown + (" et al." if total > most else "")


def links_of(metadata: Mapping[str, MetaValue]) -> list[str]:
    """The paper's addresses, arXiv first, each a valid http(s) URL."""
    links = []
    arxiv = _ARXIV_ID.fullmatch(str(metadata.get("arxiv_id", "")).strip())
    if arxiv:
        links.append(f"https://arxiv.org/abs/{arxiv.group(0)}")
    doi = _DOI.fullmatch(str(metadata.get("doi", "")).strip())
    if doi:
        links.append(f"https://doi.org/{doi.group(0)}")
    url = _URL.fullmatch(str(metadata.get("url", "")).strip())
    if url and not any(url.group(0).rstrip("/").endswith(link.split("://", 1)[1]) for link in links):
        links.append(url.group(0))
    return links


def describe(metadata: Mapping[str, MetaValue]) -> str:
    """One line: "Anna Müller, John Smith et al. · 2021 · Journal of ML Research" ("" when nothing is known)."""
    year = year_of(metadata)
    parts = [authors_of(metadata), str(year or ""), str(metadata.get("venue", "")).strip()]
    return " · ".join(p for p in parts if p)


def _first_last(name: str) -> str:
    last, _, first = (part.strip() for part in name.partition(","))
    return f"{first} {last}" if first else last
