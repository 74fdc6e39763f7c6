"""Uploaded files → a private folder of checked copies, ready for `rag.ingest`.

The browser's file name is reduced to a safe base name (no folders, no dots in front),
so it can never write outside the folder; the content must fit the extension (UTF-8
text, a JSON object per line for .jsonl, a header row for .csv) and the size limit.
The folder is the caller's to delete (see `staged`).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

ALLOWED = (".jsonl", ".csv", ".txt")
_UNSAFE = re.compile(r"[^\w.\-]+")
_SNIFF_BYTES = 64 * 1024


class UploadError(ValueError):
    """An uploaded file that will not be ingested; the message names the file and what to fix."""


def safe_name(name: str) -> str:
    """The base name of `name` with only letters, digits, '.', '-' and '_' (never a path, never hidden)."""
    base = _UNSAFE.sub("_", Path(name.replace("\\", "/")).name).lstrip(".") or "upload"
    return base[-120:]


def check_content(path: Path, name: str) -> None:
    """Raise UploadError unless the file's content is what its extension says."""
    suffix = Path(name).suffix.lower()
    if suffix not in ALLOWED:
        raise UploadError(f"{name}: only {', '.join(ALLOWED)} files can be added (JSONL, CSV or a listing page)")
    with path.open("rb") as f:
        head = f.read(_SNIFF_BYTES)
    if b"\x00" in head:
        raise UploadError(f"{name}: this is a binary file, not {suffix} text")
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # a multi-byte character cut at the sniffing limit is fine
            raise UploadError(f"{name}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
        text = head[: exc.start].decode("utf-8-sig")
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if not first:
        raise UploadError(f"{name}: the file is empty")
    if suffix == ".jsonl":
        try:
            ok = isinstance(json.loads(first), dict)
        except ValueError:
            ok = False
        if not ok and len(first) < len(text):  # a first line longer than the sniffed part is judged by the parser
            raise UploadError(f'{name}:1: a .jsonl file holds one JSON object per line, like {{"title": …}}')
    if suffix == ".csv" and "," not in first and "\t" not in first and ";" not in first:
        raise UploadError(f"{name}:1: a .csv file starts with a header row such as title,abstract")


@contextlib.contextmanager
def staged(paths: Sequence[str | Path], max_mb: int) -> Iterator[list[Path]]:
    """Checked copies of `paths` in a private temporary folder (mode 0700), deleted on exit."""
    folder = Path(tempfile.mkdtemp(prefix="rag-upload-"))
    try:
        copies: list[Path] = []
        for raw in paths:
            src = Path(raw)
            name = safe_name(src.name)
            size = src.stat().st_size
            if size > max_mb * 1024 * 1024:
                raise UploadError(f"{name}: {size / 1e6:.1f} MB is over the {max_mb} MB limit (RAG_UPLOAD_MAX_MB)")
            check_content(src, name)
            target = folder / name
            stem, n = target.stem, 1
            while target.exists():  # two uploads with one name keep both
                n += 1
                target = folder / f"{stem}-{n}{target.suffix}"
            shutil.copyfile(src, target)
            copies.append(target)
        yield copies
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def relative_message(message: str, folder: Path) -> str:
    """An error message about a staged copy, naming the file as the user knows it."""
    return message.replace(str(folder) + "/", "")
