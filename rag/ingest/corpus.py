"""The collection: parse input files, recover titles, de-duplicate papers across files."""

from __future__ import annotations

import hashlib
import logging
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from tqdm import tqdm

from rag.ingest.errors import CorpusError
from rag.ingest.formats import STREAMED, Record, iter_records, resolve_run_together
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


_CHANGED = "the file changed while it was being ingested; ingest it again"


class _Notes(logging.Handler):
    """The ingest parsers' warnings given in one thread (entries skipped, empty files), kept as text."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:  # another thread's ingest (the chat serves several) is not ours
            self.messages.append(record.getMessage())


@contextmanager
def _kept_warnings() -> Iterator[list[str]]:
    """What `rag.ingest` warns of meanwhile, still logged, and also returned for the report a user reads."""
    notes, logger = _Notes(), logging.getLogger("rag.ingest")
    logger.addHandler(notes)
    try:
        yield notes.messages
    finally:
        logger.removeHandler(notes)


class Corpus:
    """The inputs of an ingest, checked and counted but not held: `papers()` reads them again, one at a time.

    The first pass (here) raises `CorpusError` on the first malformed input, before anything is
    written, and keeps only a count of records per paper id. JSON Lines and CSV files are then streamed
    a second time; the other formats (small by nature: listings, reference exports) are kept as parsed.
    A paper stated once is yielded as soon as it is read; one stated several times waits until its
    last record, so memory grows with the duplicates, not with the collection.
    """

    notes: list[str]

    def __init__(
        self,
        files: Sequence[Path],
        known_titles: Iterable[str] = (),
        max_abstract_chars: int | None = None,
        progress: bool = False,
    ) -> None:
        """`progress`: a bar counting the records checked (a multi-GB file takes minutes to read). `notes`: what
        the reading warned of (entries without an abstract skipped, empty files), for the ingest's report."""
        with _kept_warnings() as self.notes:
            self._check(files, known_titles, max_abstract_chars, progress)

    def _check(
        self, files: Sequence[Path], known_titles: Iterable[str], max_abstract_chars: int | None, progress: bool
    ) -> None:
        self.files = list({path.resolve(): path for path in files}.values())  # a file named twice is read once
        self._held: dict[Path, list[Record]] = {}  # the parsed records of the formats not streamed
        self._records: dict[str, int] = {}  # paper id -> records stating it
        self._stamps: dict[Path, tuple[int, int]] = {}  # streamed file -> (size, mtime) when checked
        bar = tqdm(desc="checking", unit=" records", file=sys.stderr, disable=not progress, mininterval=1.0)
        for path in self.files:  # the held formats first: their run-together cards say whether titles are needed
            if path.suffix.lower() not in STREAMED:
                self._held[path] = records = list(iter_records(path))
                for rec in records:
                    _check_size(rec, max_abstract_chars)
                bar.update(len(records))
        held = [rec for records in self._held.values() for rec in records]
        needs_titles = any(rec.run_together is not None for rec in held)
        plain_titles = [rec.title for rec in held if rec.run_together is None] if needs_titles else []
        for path in self.files:
            if path in self._held:
                continue
            stat = path.stat() if path.is_file() else None
            for rec in iter_records(path):
                bar.update()
                _check_size(rec, max_abstract_chars)
                self._count(rec)
                if needs_titles:
                    plain_titles.append(rec.title)
            if stat is not None:
                self._stamps[path] = (stat.st_size, stat.st_mtime_ns)
        bar.close()
        if needs_titles:
            resolve_run_together(held, [*plain_titles, *known_titles])
        for rec in held:
            self._count(rec)

    def _count(self, rec: Record) -> None:
        pid = paper_id_for(rec.title)
        self._records[pid] = self._records.get(pid, 0) + 1

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, paper_id: object) -> bool:
        return paper_id in self._records

    def papers(self) -> Iterator[Paper]:
        """Each paper once, merged from all its records, in the order their last record is read."""
        waiting: dict[str, list[Record]] = {}
        done: set[str] = set()  # papers stated more than once, already yielded (one stated once cannot recur)
        for path in self.files:
            if path in self._held:
                records: Iterable[Record] = self._held[path]
            else:
                stat = path.stat() if path.is_file() else None
                if stat is None or self._stamps.get(path) != (stat.st_size, stat.st_mtime_ns):
                    raise CorpusError(path, None, _CHANGED)
                records = iter_records(path, warn=False)  # its warnings were given in the first pass
            for rec in records:
                pid = paper_id_for(rec.title)
                wanted = self._records.get(pid)
                if wanted is None or pid in done:
                    raise CorpusError(path, rec.line, _CHANGED)
                if wanted == 1:
                    yield _merge([rec])
                    continue
                group = waiting.setdefault(pid, [])
                group.append(rec)
                if len(group) == wanted:
                    done.add(pid)
                    yield _merge(waiting.pop(pid))
        if waiting:
            rec = next(iter(waiting.values()))[0]
            raise CorpusError(rec.path or rec.source, rec.line, _CHANGED)


def _check_size(rec: Record, max_abstract_chars: int | None) -> None:
    size = len(rec.abstract or rec.run_together or "")
    if max_abstract_chars is not None and size > max_abstract_chars:
        raise CorpusError(
            rec.path or rec.source,
            rec.line,
            f"the abstract is {size:,} characters, over the limit of {max_abstract_chars:,}; "
            "shorten it or raise RAG_MAX_ABSTRACT_CHARS",
        )


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
    return list(Corpus(files, known_titles, max_abstract_chars).papers())
