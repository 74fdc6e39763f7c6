"""Which papers a search may return: a year range, an author, a source file, an arXiv category.

A `PaperFilter` is applied before ranking, in both retrievers: as a Chroma `where` on fields every chunk record
carries (`filter_fields`), and as a mask over the BM25 rows of the chunks that `where` admits. `admits` states
the same rule on a `Paper` (the reference the tests check both retrievers against, and the Library table's
filter). Names compare folded (case and accents ignored); an author matches by surname ("Hinton", "G. Hinton"
and "Hinton, Geoffrey" all ask for surname hinton), a category by its code ("cs.LG"), a source by file name.
A paper without a known year is left out by any year bound.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, cast

from chromadb.api.types import Where

from rag.provenance import year_of
from rag.types import Paper

# Chunk-record keys (written by rag.index.records), named here with the rule that reads them.
F_YEAR, F_AUTHORS, F_SOURCES, F_CATEGORIES = "f_year", "f_authors", "f_sources", "f_categories"
FILTER_KEYS = (F_YEAR, F_AUTHORS, F_SOURCES, F_CATEGORIES)
_YEAR_RANGE = (1000, 2999)
_CATEGORY_RE = re.compile(r"^(?:[a-z-]+\.[a-z-]+|[a-z]+-[a-z]+)$")  # arXiv codes: cs.lg, stat.ml, hep-th


def fold(text: str) -> str:
    """Lower case, accents and surrounding space removed: how names are compared."""
    decomposed = unicodedata.normalize("NFKD", text)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).casefold().split())


def surname(name: str) -> str:
    """The surname a name asks for: before a comma ("Hinton, Geoffrey"), else the last word ("G. Hinton")."""
    name = fold(name)
    if "," in name:
        return name.split(",", 1)[0].strip()
    return name.split()[-1] if name.split() else ""


@dataclass(frozen=True)
class PaperFilter:
    """Papers from `year_from` to `year_to` (inclusive), by `author` (a surname), from `source` (a file name),
    in `category` (an arXiv category); unset fields do not filter."""

    year_from: int | None = None
    year_to: int | None = None
    author: str | None = None
    source: str | None = None
    category: str | None = None

    def __post_init__(self) -> None:
        for name in ("year_from", "year_to"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not _YEAR_RANGE[0] <= value <= _YEAR_RANGE[1]
            ):
                raise ValueError(f"{name} must be a year such as 2022, not {value!r}")
        if self.year_from is not None and self.year_to is not None and self.year_from > self.year_to:
            raise ValueError(f"year_from ({self.year_from}) is after year_to ({self.year_to}); swap them")
        for name in ("author", "source", "category"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{name} must be text, not {value!r}")
            if value is not None and not value.strip():
                object.__setattr__(self, name, None)  # an empty box in a form filters nothing
        if self.author is not None and not surname(self.author):
            raise ValueError(f"author {self.author!r} names no surname")

    @classmethod
    def of(cls, value: PaperFilter | Mapping[str, Any] | None) -> PaperFilter | None:
        """A filter from what `where=` was given (a PaperFilter, a dict of its fields, or None)."""
        if value is None or isinstance(value, PaperFilter):
            return value if value is None or value.active else None
        if not isinstance(value, Mapping):
            raise ValueError(f"where must be a rag.PaperFilter or a dict of its fields, not {type(value).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown filter field(s) {', '.join(unknown)}; use {', '.join(sorted(known))}")
        made = cls(**value)
        return made if made.active else None

    @property
    def active(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self))

    def where(self) -> Where | None:
        """The Chroma filter on chunk records (None when nothing filters)."""
        clauses: list[dict[str, Any]] = []
        if self.year_from is not None:
            clauses.append({F_YEAR: {"$gte": self.year_from}})
        if self.year_to is not None:
            clauses.append({F_YEAR: {"$lte": self.year_to}})
        if self.author is not None:
            clauses.append({F_AUTHORS: {"$contains": surname(self.author)}})
        if self.source is not None:
            clauses.append({F_SOURCES: {"$contains": self.source.strip()}})
        if self.category is not None:
            clauses.append({F_CATEGORIES: {"$contains": fold(self.category)}})
        if not clauses:
            return None
        return cast(Where, clauses[0] if len(clauses) == 1 else {"$and": clauses})

    def admits(self, paper: Paper) -> bool:
        """Whether `paper` passes: the same rule as `where`, on a Paper."""
        found = filter_fields(paper)
        year = found.get(F_YEAR)
        if self.year_from is not None and (not isinstance(year, int) or year < self.year_from):
            return False
        if self.year_to is not None and (not isinstance(year, int) or year > self.year_to):
            return False
        checks = (
            (self.author, F_AUTHORS, surname),
            (self.source, F_SOURCES, str.strip),
            (self.category, F_CATEGORIES, fold),
        )
        for wanted, key, norm in checks:
            if wanted is not None and norm(wanted) not in cast(list[str], found.get(key, [])):
                return False
        return True

    def describe(self) -> str:
        """ "2022–2024 · author Hinton · source mine.bib · category cs.LG" ("" when nothing filters)."""
        parts = []
        if self.year_from is not None or self.year_to is not None:
            if self.year_to is None:
                parts.append(f"from {self.year_from}")
            elif self.year_from is None:
                parts.append(f"up to {self.year_to}")
            else:
                parts.append(
                    str(self.year_from) if self.year_from == self.year_to else f"{self.year_from}–{self.year_to}"
                )
        parts += [f"{name} {value}" for name, value in (("author", self.author), ("source", self.source),
                                                        ("category", self.category)) if value is not None]  # fmt: skip
        return " · ".join(parts)


def parse_years(text: str) -> tuple[int | None, int | None]:
    """A year range as typed: "2022", "2022-" (from), "-2021" (up to), "2019-2021"."""
    found = re.fullmatch(r"\s*(\d{4})?\s*([-–])?\s*(\d{4})?\s*", text)
    if (
        not found
        or not (found.group(1) or found.group(3))
        or (found.group(1) and found.group(3) and not found.group(2))
    ):
        raise ValueError(f"years must look like 2022, 2022-, -2021 or 2019-2021, not {text!r}")
    start, dash, end = found.groups()
    first = int(start) if start else None
    last = int(end) if end else (first if not dash else None)
    return first, last


def filter_fields(paper: Paper) -> dict[str, int | list[str]]:
    """What each chunk of `paper` carries for filtering (keys left out when the paper has no such value)."""
    meta = paper.metadata
    out: dict[str, int | list[str]] = {}
    year = year_of(meta)
    if year is not None:
        out[F_YEAR] = year
    names: list[str] = []
    for author in str(meta.get("authors", "")).split(";"):
        last = surname(author)
        if last:
            names += [last] + ([last.split()[-1]] if " " in last else [])  # "van der berg" and "berg"
    if names:
        out[F_AUTHORS] = sorted(set(names))
    if paper.sources:
        out[F_SOURCES] = sorted(set(paper.sources))
    categories = [fold(c) for c in re.split(r"[;,]|\s+", str(meta.get("categories", ""))) if c.strip()]
    categories = [c for c in categories if _CATEGORY_RE.match(c)]
    if categories:
        out[F_CATEGORIES] = sorted(set(categories))
    return out
