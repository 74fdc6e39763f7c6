"""Text normalisation shared by de-duplication, title matching and input cleaning."""

from __future__ import annotations

import re
import unicodedata

_NON_WORD_RE = re.compile(r"[\W_]+", re.UNICODE)
# C0/C1 control characters except tab and newline.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def normalise_title(title: str) -> str:
    """Case-, accent-width- and punctuation-insensitive key for comparing titles."""
    folded = unicodedata.normalize("NFKC", title).casefold()
    return " ".join(_NON_WORD_RE.sub(" ", folded).split())


def strip_control(text: str) -> str:
    """Remove control characters that could garble prompts, logs or the terminal."""
    return _CONTROL_RE.sub(" ", text)


_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")


def require_text(text: str, what: str) -> str:
    """`text` if it is valid Unicode; a ValueError naming `what` if it holds undecodable bytes.

    Python keeps bytes that are not UTF-8 (from argv or a terminal) as lone surrogates,
    which the tokenizers and the index cannot take.
    """
    bad = _SURROGATE_RE.search(text)
    if bad:
        raise ValueError(
            f"the {what} holds bytes that are not valid UTF-8 (at character {bad.start() + 1}); "
            "check the terminal's encoding and type it again"
        )
    return text
