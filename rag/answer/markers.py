"""Citation markers in answer text: `[3]`, `[1, 2]`, `[1-3]`, but not math such as `[0,1]` or `x_[1]`."""

from __future__ import annotations

import re

MARKER_RE = re.compile(r"(?<![\^_\w])\[(\d+(?:\s*(?:,|;|-|–)\s*\d+)*)\](?![\^_{(\w])")


def with_marker(sentence: str, number: int) -> str:
    """The sentence with its citation marker before the closing punctuation."""
    body = sentence.rstrip()
    if body[-1:] in ".!?":
        return f"{body[:-1]} [{number}]{body[-1]}"
    return f"{body} [{number}]."
