"""Sentence spans of abstract text, for evidence and per-sentence support checks."""

from __future__ import annotations

import base64
import re

import numpy as np

# A sentence ends at . ! or ? followed by space and a capital, digit, parenthesis or quote
# (not "[": a citation marker after a period belongs to the sentence before it)...
_BOUNDARY_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'“])")
# ...unless the period belongs to an abbreviation.
_ABBREVIATIONS = (
    "e.g.",
    "i.e.",
    "et al.",
    "etc.",
    "fig.",
    "figs.",
    "eq.",
    "eqs.",
    "vs.",
    "cf.",
    "resp.",
    "approx.",
    "no.",
)


def sentence_spans(text: str, start: int = 0) -> list[tuple[int, int]]:
    """(begin, end) character spans of the sentences in text[start:], as offsets into `text`."""
    spans: list[tuple[int, int]] = []
    begin = start
    for m in _BOUNDARY_RE.finditer(text, start):
        head = text[begin : m.start()].lower()
        if head.endswith(_ABBREVIATIONS) or len(head.strip()) < 2:
            continue
        spans.append((begin, m.start()))
        begin = m.end()
    if text[begin:].strip():
        spans.append((begin, len(text.rstrip())))
    return spans


def split_sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text)]


def encode_vectors(vectors: np.ndarray) -> str:
    """Compact text form of sentence vectors for Chroma metadata (float16, base64)."""
    return base64.b64encode(vectors.astype(np.float16).tobytes()).decode("ascii")


def decode_vectors(text: str, dim: int) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(text), dtype=np.float16)
    return raw.astype(np.float32).reshape(-1, dim)
