"""The collection: parse input files, recover titles, de-duplicate papers across files."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

from rag.ingest.errors import CorpusError
from rag.ingest.formats import Record, parse_file, resolve_run_together
from rag.text import normalise_title
from rag.types import MetaValue, Paper


def bundled_paths() -> list[Path]:
    """The listing files shipped with the package (the bundled collection)."""
    folder = Path(str(resources.files("rag") / "data" / "listings"))
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def paper_id_for(title: str) -> str:
    """Stable id from the normalised title, so the same paper keeps its id across files and runs."""
    return "p" + hashlib.sha1(normalise_title(title).encode()).hexdigest()[:12]


def _merge(records: list[Record]) -> Paper:
    """One paper from every record of it: the longest abstract, all sources, merged metadata."""
    best = max(records, key=lambda r: len(r.abstract))
    sources: list[str] = []
    meta: dict[str, MetaValue] = {}
    for rec in records:
        if rec.source not in sources:
            sources.append(rec.source)
        for key, value in rec.metadata.items():
            meta.setdefault(key, value)
    return Paper(paper_id_for(best.title), best.title, best.abstract, tuple(sources), meta)


def load_corpus(
    paths: Sequence[str | Path] | None = None,
    known_titles: Iterable[str] = (),
    max_abstract_chars: int | None = None,
) -> list[Paper]:
    """Papers of `paths` (default: the bundled collection), de-duplicated by normalised title.

    Titles of run-together listing cards are recovered using the titles that the
    other files (and `known_titles`, e.g. those already indexed) state plainly.
    Raises `CorpusError` on the first malformed input; nothing is returned then.
    """
    files = [Path(p) for p in paths] if paths is not None else bundled_paths()
    records = [rec for path in files for rec in parse_file(path)]
    if max_abstract_chars is not None:
        for rec in records:
            size = len(rec.abstract or rec.run_together or "")
            if size > max_abstract_chars:
                raise CorpusError(
                    rec.path or rec.source,
                    rec.line,
                    f"the abstract is {size:,} characters, over the limit of {max_abstract_chars:,}; "
                    "shorten it or raise RAG_MAX_ABSTRACT_CHARS",
                )
    plain_titles = [r.title for r in records if r.run_together is None]
    resolve_run_together(records, [*plain_titles, *known_titles])
    groups: dict[str, list[Record]] = {}
    for rec in records:
        groups.setdefault(normalise_title(rec.title), []).append(rec)
    return [_merge(group) for group in groups.values()]
