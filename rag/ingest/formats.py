"""Parsers for the input formats: scraped listings (three layouts), JSONL (arXiv metadata records too), CSV,
and reference-manager exports (BibTeX, RIS, CSL-JSON: rag.ingest.references).

Each parser returns `Record`s in file order and raises `CorpusError` naming the
file and line of the first problem, so nothing is indexed from a bad file.
"""

from __future__ import annotations

import csv
import itertools
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rag.ingest.errors import CorpusError
from rag.ingest.references import (
    Entry,
    arxiv_entry,
    is_arxiv_record,
    parse_bibtex,
    parse_csl_json,
    parse_ris,
)
from rag.ingest.sniff import NOT_UTF8, check_content, csv_delimiter
from rag.ingest.titles import split_title
from rag.text import has_surrogates, strip_control
from rag.types import MetaValue

log = logging.getLogger(__name__)

MAX_TITLE_CHARS = 400
MIN_ABSTRACT_CHARS = 40
MAX_META_FIELDS = 32
MAX_META_KEY_CHARS = 64
MAX_META_VALUE_CHARS = 2000
_INT64 = 2**63


@dataclass
class Record:
    """A paper as one file states it, before de-duplication across files."""

    title: str
    abstract: str
    source: str
    line: int
    metadata: dict[str, MetaValue] = field(default_factory=dict)
    # Format (c) text whose title still has to be recovered.
    run_together: str | None = None
    path: str = ""  # the file as given, for messages


# --- listing layouts -------------------------------------------------------------

# Page chrome of the scraped listing pages, wherever it appears.
_CHROME_RE = re.compile(
    r"^(new|subscribe|daily papers|byak and the research community"
    r"|get trending papers in your email inbox( once a day)?!"
    r"|(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec) \d{1,2}(, \d{4})?)$",
    re.IGNORECASE,
)
# The chrome word the scraper glued to the first title ("SubscribeMinimum width ...").
_GLUED_CHROME_RE = re.compile(r"^Subscribe(?=[A-Z0-9])")
# Format (c): "<votes|->" "<title+abstract>" "<N> authors · <Mon D[, YYYY]>" ["<count>"].
_CARD_RE = re.compile(
    r"^(?P<votes>-|\d+) (?P<body>.+?) (?P<authors>\d+) authors? · "
    r"(?P<date>[A-Z][a-z]{2} \d{1,2}(?:, \d{4})?)(?: (?P<comments>\d+))?$"
)


def _is_card_file(lines: list[str]) -> bool:
    cards = sum(bool(_CARD_RE.match(line)) for line in lines)
    return cards > 0 and cards >= 0.5 * len(lines)


def _parse_cards(path: Path, numbered: list[tuple[int, str]]) -> list[Record]:
    records = []
    for number, line in numbered:
        m = _CARD_RE.match(line)
        if not m:
            raise CorpusError(
                path, number, "not a listing card ('<votes|-> <title> <abstract> N authors · Mon D, YYYY')"
            )
        meta: dict[str, MetaValue] = {"authors_count": int(m["authors"]), "date": m["date"]}
        if m["votes"] != "-":
            meta["upvotes"] = int(m["votes"])
        if m["comments"]:
            meta["comments"] = int(m["comments"])
        records.append(Record("", "", path.name, number, meta, run_together=m["body"]))
    return records


def _parse_pairs(path: Path, numbered: list[tuple[int, str]]) -> list[Record]:
    records = []
    for k in range(0, len(numbered), 2):
        t_no, title = numbered[k]
        if len(title) > MAX_TITLE_CHARS:
            raise CorpusError(path, t_no, f"expected a title line, found {len(title)} characters of text")
        if k + 1 >= len(numbered):
            raise CorpusError(path, t_no, f"title {title[:80]!r} has no abstract line after it")
        a_no, abstract = numbered[k + 1]
        if len(abstract) < MIN_ABSTRACT_CHARS:
            raise CorpusError(
                path, a_no, f"expected the abstract of {title[:80]!r}, found a {len(abstract)}-character line"
            )
        records.append(Record(title, abstract, path.name, t_no))
    return records


def parse_listing(path: Path, text: str) -> list[Record]:
    """A scraped listing page: card lines (format c) or title/abstract line pairs (a, b)."""
    numbered = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = " ".join(strip_control(raw).split())
        if not line or _CHROME_RE.match(line):
            continue
        numbered.append((number, _GLUED_CHROME_RE.sub("", line)))
    if _is_card_file([line for _, line in numbered]):
        return _parse_cards(path, numbered)
    return _parse_pairs(path, numbered)


# --- structured formats -------------------------------------------------------------


def _meta_value(path: Path, line: int, key: str, value: object) -> MetaValue:
    """A metadata value as the index can store it: a scalar within bounds, or JSON text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -_INT64 <= value < _INT64:
            raise CorpusError(path, line, f"field {key!r}: the number {value} is too large to store; quote it")
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise CorpusError(path, line, f"field {key!r}: {value} is not a finite number; remove it or quote it")
        return value
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if len(text) > MAX_META_VALUE_CHARS:
        raise CorpusError(
            path,
            line,
            f"field {key!r} is {len(text):,} characters; metadata values are limited to {MAX_META_VALUE_CHARS:,}",
        )
    return strip_control(text)


def _check_meta_key(path: Path, line: int, key: str) -> None:
    """Chroma reserves some names and refuses others; say so before anything is written."""
    if not key.strip():
        raise CorpusError(path, line, "a field has an empty name; name it or remove it")
    if key.startswith(("chroma:", "#", "$")):
        raise CorpusError(path, line, f"field name {key!r} is reserved by the index (Chroma); rename the field")
    if len(key) > MAX_META_KEY_CHARS or strip_control(key) != key:
        raise CorpusError(
            path, line, f"field name {key[:80]!r} must be at most {MAX_META_KEY_CHARS} printable characters"
        )


def _no_surrogates(path: Path, line: int, value: object) -> None:
    """JSON escapes such as \\ud800 decode to text no tokenizer or index accepts: refuse them here."""
    if isinstance(value, dict):
        texts: list[object] = [*value.keys(), *value.values()]
    else:
        texts = [value] if isinstance(value, str) else list(value) if isinstance(value, list) else []
    for text in texts:
        if isinstance(text, dict | list):
            _no_surrogates(path, line, text)
        elif isinstance(text, str) and has_surrogates(text):
            raise CorpusError(path, line, "holds an invalid Unicode escape (a lone surrogate such as \\ud800); fix it")


def _record_from_mapping(path: Path, line: int, row: dict[str, object]) -> Record:
    _no_surrogates(path, line, row)  # keys and values, nested too
    missing = [f for f in ("title", "abstract") if not isinstance(row.get(f), str) or not str(row[f]).strip()]
    if missing:
        raise CorpusError(path, line, f"missing or empty field(s): {', '.join(missing)}")
    extra = {key: value for key, value in row.items() if key not in ("title", "abstract")}
    if len(extra) > MAX_META_FIELDS:
        raise CorpusError(path, line, f"{len(extra)} metadata fields; at most {MAX_META_FIELDS} are kept per paper")
    meta: dict[str, MetaValue] = {}
    for key, value in extra.items():
        _check_meta_key(path, line, str(key))
        if value is None or value == "":
            continue
        meta[str(key)] = _meta_value(path, line, str(key), value)
    title = " ".join(strip_control(str(row["title"])).split())
    if len(title) > MAX_TITLE_CHARS:
        raise CorpusError(
            path, line, f"the title is {len(title):,} characters; titles are limited to {MAX_TITLE_CHARS}"
        )
    abstract = " ".join(strip_control(str(row["abstract"])).split())
    return Record(title, abstract, path.name, line, meta)


def parse_jsonl(path: Path, lines: Iterable[tuple[int, str]], warn: bool = True) -> Iterator[Record]:
    """One JSON object per line: {"title", "abstract", …} or a record of arXiv's metadata snapshot."""
    skipped = read = 0
    for number, line in lines:
        if not line.strip():
            continue
        read += 1
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(path, number, f"invalid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise CorpusError(path, number, "expected a JSON object with 'title' and 'abstract'")
        if is_arxiv_record(row):
            entry = arxiv_entry(row, number)
            if entry.title and entry.abstract:
                yield _record_from_entry(path, entry)
            else:
                skipped += 1
            continue
        yield _record_from_mapping(path, number, row)
    if skipped and warn:
        log.warning("%s: %d arXiv record(s) without a title or an abstract skipped", path, skipped)
    if not read and warn:
        log.warning("%s: empty file, nothing to ingest", path)


_AFTER_BARE_CR = re.compile(rb"(?<=\r)(?!\n)")  # where a line ends in a bare CR, its ending kept


def _lines(path: Path, keep_ends: bool = False) -> Iterator[tuple[int, str]]:
    """(number, text) of each line, read one at a time: a million-record file is never held whole.

    A bare CR ends a line too (old Mac files); JSON cannot hold a raw CR inside a string, so nothing is cut.
    `keep_ends`: lines as read, ending and all (what the csv module wants, for line breaks inside quotes).
    """
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise CorpusError(path, None, f"cannot read it ({exc.strerror or exc})") from None
    number = 0
    with handle:
        for raw in handle:
            parts = [p for p in _AFTER_BARE_CR.split(raw) if p] if keep_ends else raw.rstrip(b"\r\n").split(b"\r")
            for part in parts:
                number += 1
                try:
                    yield number, part.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError:
                    raise CorpusError(path, number, NOT_UTF8) from None


def _record_from_entry(path: Path, entry: Entry) -> Record:
    """A reference's entry as a Record, checked as any other input line."""
    return _record_from_mapping(path, entry.line, {"title": entry.title, "abstract": entry.abstract, **entry.metadata})


def parse_references(path: Path, text: str, kind: str) -> list[Record]:
    """A reference-manager export (.bib, .ris, CSL-JSON .json): its entries with an abstract."""
    parser = {"bib": parse_bibtex, "ris": parse_ris, "json": parse_csl_json}[kind]
    return [_record_from_entry(path, entry) for entry in parser(path, text).entries]


def parse_csv(path: Path, lines: Iterable[tuple[int, str]], warn: bool = True) -> Iterator[Record]:
    """A CSV with a header row naming title and abstract columns, separated by commas, semicolons or tabs.

    `lines`: (number, text with its ending), read as they come, so a large CSV is streamed like JSON Lines."""
    numbered = iter(lines)
    start, header = next(((n, line) for n, line in numbered if line.strip()), (0, ""))  # blank lines before it
    if not start:
        if warn:
            log.warning("%s: empty file, nothing to ingest", path)
        return
    reader = csv.DictReader(itertools.chain([header], (line for _, line in numbered)), delimiter=csv_delimiter(header))
    offset = start - 1  # reader.line_num counts from the header
    try:
        fields = [f.strip() for f in reader.fieldnames or []]
        if reader.line_num > 1:  # a quote left open: the header ran on into the rows
            raise CorpusError(path, start, "the header row has a quote that is never closed")
        if "title" not in fields or "abstract" not in fields:
            raise CorpusError(path, start, f"CSV header must have 'title' and 'abstract' columns, found {fields}")
        empty = True
        for row in reader:
            empty = False
            clean = {(k or "").strip(): v for k, v in row.items() if k is not None}
            yield _record_from_mapping(path, offset + reader.line_num, dict(clean))
        if empty and warn:
            log.warning("%s: a header and no rows, nothing to ingest", path)
    except csv.Error as exc:
        raise CorpusError(path, offset + reader.line_num, f"malformed CSV ({exc})") from None


def read_text(path: Path) -> str:
    """The file as UTF-8 text; a decoding error names the line it is on."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CorpusError(path, None, f"cannot read it ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CorpusError(path, line, NOT_UTF8) from None


STREAMED = (".jsonl", ".ndjson", ".csv")  # read a line at a time; other formats are read whole


def iter_records(path: Path, warn: bool = True) -> Iterator[Record]:
    """Records of one input file, by its extension (.jsonl, .csv, .bib, .ris, .json, anything else: listing).

    JSON Lines and CSV files are streamed, so reading them again (an ingest reads its inputs twice) costs no
    memory; `warn=False` for that second reading.
    """
    if not path.is_file():
        raise CorpusError(path, None, "no such file")
    check_content(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        records: Iterable[Record] = parse_csv(path, _lines(path, keep_ends=True), warn)
    elif suffix in STREAMED:
        records = parse_jsonl(path, _lines(path), warn)
    else:
        text = read_text(path)
        if not text.strip():
            log.warning("%s: empty file, nothing to ingest", path)
            return
        if suffix in (".bib", ".ris", ".json"):
            records = parse_references(path, text, suffix[1:])
        else:
            records = parse_listing(path, text)
    for rec in records:
        rec.path = str(path)
        yield rec


def parse_file(path: Path) -> list[Record]:
    """Every record of one input file (see `iter_records`)."""
    return list(iter_records(path))


def resolve_run_together(records: list[Record], known_titles: Iterable[str]) -> None:
    """Fill in title and abstract of format (c) records, in place."""
    known = list(known_titles)
    for rec in records:
        if rec.run_together is None:
            continue
        try:
            rec.title, rec.abstract = split_title(rec.run_together, known)
        except ValueError as exc:
            raise CorpusError(rec.path or rec.source, rec.line, str(exc)) from None
        rec.run_together = None
