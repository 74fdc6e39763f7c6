"""The first look at an input file: is its content what its name says?

One check with one message for each problem, shared by `rag ingest` (before parsing) and the chat's
upload (before copying): a UTF-16 file, a binary one, bytes that are not UTF-8, a .jsonl whose first
line is not a JSON object, a .csv without a title and abstract header, a .bib, .ris or .json that does not start
as one. Only the first 64 KiB are read;
a first line longer than that is left to the parser, which reads the whole file and names the line.
"""

from __future__ import annotations

import codecs
import csv
import json
from pathlib import Path

from rag.ingest.errors import CorpusError

SNIFF_BYTES = 64 * 1024
CSV_DELIMITERS = (",", ";", "\t")
_WIDE_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
NOT_UTF8 = "not valid UTF-8 text; convert the file to UTF-8 (e.g. with iconv)"


def csv_delimiter(header: str) -> str:
    """The delimiter (comma, semicolon or tab) with which `header` names a title and an abstract column."""
    for delimiter in CSV_DELIMITERS:
        fields = {f.strip() for f in next(csv.reader([header], delimiter=delimiter), [])}
        if {"title", "abstract"} <= fields:
            return delimiter
    return ","


def _looks_utf16(head: bytes) -> bool:
    """BOM-less UTF-16 of mostly ASCII text: every other byte is zero, and the bytes between are not."""
    halves = sorted((head[0::2].count(0) / max(1, len(head[0::2])), head[1::2].count(0) / max(1, len(head[1::2]))))
    return len(head) >= 8 and halves[1] > 0.4 and halves[0] < 0.05


def check_content(path: Path, shown: str | None = None) -> bool:
    """Raise CorpusError (named `shown`, default the path) unless the file's start fits its extension.

    Returns whether the file holds any text (an empty file is a warning at ingest, an error at upload)."""
    name = shown or str(path)
    try:
        with path.open("rb") as f:
            head = f.read(SNIFF_BYTES + 1)
    except OSError as exc:
        raise CorpusError(name, None, f"cannot read it ({exc.strerror or exc})") from None
    whole = len(head) <= SNIFF_BYTES
    head = head[:SNIFF_BYTES]
    if head.startswith(_WIDE_BOMS) or _looks_utf16(head):
        raise CorpusError(name, None, "UTF-16 text; save it as UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)")
    if b"\x00" in head:
        raise CorpusError(name, None, "a binary file, not text; give a .jsonl, .csv or listing .txt file")
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if whole or exc.start < len(head) - 4:  # a multi-byte character cut at the sniffing limit is fine
            raise CorpusError(name, head[: exc.start].count(b"\n") + 1, NOT_UTF8) from None
        text = head[: exc.start].decode("utf-8-sig")
    lines = text.splitlines()
    if not whole and not text.endswith(("\n", "\r")):
        lines = lines[:-1]  # the last line may go on past the sniffed part: the parser judges it
    number, first = next(((n, line.strip()) for n, line in enumerate(lines, 1) if line.strip()), (0, ""))
    if not first:
        return not whole  # empty, or a first line too long to sniff
    suffix = Path(name).suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        try:
            is_object = isinstance(json.loads(first), dict)
        except ValueError:
            is_object = False
        if not is_object:
            raise CorpusError(name, number, 'a .jsonl file holds one JSON object per line, like {"title": …}')
    elif suffix == ".ris" and not first.startswith("TY  -"):
        raise CorpusError(name, number, "a .ris file starts each entry with 'TY  - ' (export as RIS)")
    elif suffix == ".json" and not first.startswith(("[", "{")):
        raise CorpusError(name, number, "a .json file holds a CSL-JSON array of items (export as CSL JSON)")
    elif suffix == ".bib" and not first.startswith(("@", "%")):
        raise CorpusError(name, number, "a .bib file holds BibTeX entries such as @article{key, …}")
    elif suffix == ".csv":
        fields = [f.strip() for f in next(csv.reader([first], delimiter=csv_delimiter(first)), [])]
        if not {"title", "abstract"} <= set(fields):
            found = ", ".join(repr(f) for f in fields[:8]) or "nothing"
            raise CorpusError(
                name,
                number,
                f"a .csv file starts with a header row naming 'title' and 'abstract' columns; found {found}",
            )
    return True
