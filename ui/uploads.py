"""Uploaded files → a private folder of checked copies, ready for `rag.ingest`.

The browser's file name is reduced to a safe base name (no folders, no dots in front),
so it can never write outside the folder; the content must fit the extension (UTF-8
text, a JSON object per line for .jsonl, a header row for .csv) and the size limit.
The folder is the caller's to delete (see `staged`).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from rag.ingest.errors import CorpusError
from rag.ingest.sniff import check_content as sniff

ALLOWED = (".jsonl", ".csv", ".txt", ".bib", ".ris", ".json")
_UNSAFE = re.compile(r"[^\w.\-]+")


class UploadError(ValueError):
    """An uploaded file that will not be ingested; the message names the file and what to fix."""


def safe_name(name: str) -> str:
    """The base name of `name` with only letters, digits, '.', '-' and '_' (never a path, never hidden)."""
    base = _UNSAFE.sub("_", Path(name.replace("\\", "/")).name).lstrip(".") or "upload"
    return base[-120:]


def check_content(path: Path, name: str) -> None:
    """Raise UploadError unless the file's content is what its extension says (the check `rag ingest` makes)."""
    suffix = Path(name).suffix.lower()
    if suffix not in ALLOWED:
        raise UploadError(
            f"{name}: only {', '.join(ALLOWED)} files can be added "
            "(JSONL, CSV, a listing page, BibTeX, RIS or CSL-JSON)"
        )
    try:
        has_text = sniff(path, name)
    except CorpusError as exc:
        raise UploadError(str(exc)) from None
    if not has_text:
        raise UploadError(f"{name}: the file is empty")


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
