"""Recover the title from "title and abstract run together" text (listing format c).

Two steps. A title that is already known (from another file of the same load, or
from the index) and prefixes the text wins outright. Otherwise every word
boundary is scored as a possible title/abstract border on cues that hold for
paper titles in general: the abstract opens a sentence (a capitalised word
followed soon by a lower-case content word), often with a typical opener
("We", "In this", ...); a title-case title stops being title case there; a
title does not end in a function word. The highest score wins, ties go to the
earliest border. `bench/title_split_accuracy.py` measures it on every paper of
the bundled collection whose title is known from the other formats.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rag.text import normalise_title

# Words that title case leaves in lower case (and that never end a title).
SMALL_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "nor",
        "for",
        "so",
        "yet",
        "of",
        "on",
        "in",
        "at",
        "to",
        "by",
        "up",
        "as",
        "is",
        "are",
        "vs",
        "via",
        "with",
        "from",
        "into",
        "onto",
        "over",
        "per",
        "than",
        "upon",
        "without",
        "within",
        "versus",
    ]
)
# Words an abstract typically opens with: a prior, not a rule.
OPENERS = frozenset(
    [
        "we",
        "in",
        "this",
        "the",
        "a",
        "an",
        "recent",
        "recently",
        "our",
        "although",
        "while",
        "many",
        "despite",
        "given",
        "how",
        "what",
        "why",
        "when",
        "large",
        "deep",
        "modern",
        "neural",
        "existing",
        "current",
        "it",
        "these",
        "there",
        "one",
        "understanding",
        "learning",
        "training",
        "machine",
    ]
)
_MIN_TITLE_WORDS = 2
_MAX_TITLE_WORDS = 40


def _is_capitalised(word: str) -> bool:
    return word[:1].isupper()


def _is_lower_content(word: str) -> bool:
    bare = word.strip("()[]{},.;:!?\"'")
    return bool(bare) and bare[0].islower() and bare.lower() not in SMALL_WORDS


def _title_case_share(words: list[str]) -> float:
    """Share of a title's content words (after the first) that are capitalised."""
    content = [w for w in words[1:] if w.strip("()[]{},.;:!?\"'").lower() not in SMALL_WORDS]
    content = [w for w in content if w[:1].isalpha()]
    if not content:
        return 1.0
    return sum(_is_capitalised(w) for w in content) / len(content)


_SENTENCE_END_RE = re.compile(r"[a-z0-9\)]{2,}[.!]$")
_ACRONYM_RE = re.compile(r"^\(([A-Z][A-Za-z0-9-]*[A-Z])s?\)[,.;:]?$")


def _acronym_starts_here(words: list[str], i: int) -> bool:
    """Whether words[i:] open with an expanded acronym, e.g. "Large Language Models (LLMs)"."""
    start = i + 1 if words[i].lower() in ("the", "a", "an") else i
    for j in range(start + 1, min(len(words), start + 9)):
        m = _ACRONYM_RE.match(words[j])
        if m:
            initials = "".join(part[0] for w in words[start:j] for part in w.split("-") if part and part[0].isalpha())
            letters = [c for c in m.group(1) if c.isupper()]
            return initials.upper().startswith("".join(letters)) and len(letters) >= 2
    return False


def _border_score(words: list[str], i: int) -> float | None:
    """How much `words[i]` looks like the first word of the abstract (None: impossible)."""
    word, prev = words[i], words[i - 1]
    if not _is_capitalised(word) or prev.endswith((":", "-", "–", ",")):
        return None
    if any(_SENTENCE_END_RE.search(w) for w in words[:i]):
        return None  # a title holds no sentence end; the border is before it
    after = words[i + 1 : i + 7]
    if not any(_is_lower_content(w) for w in after[:3]) and not _acronym_starts_here(words, i):
        return None
    score = 1.0
    if word.lower() in OPENERS:
        score += 1.0
    if after and after[0][:1].islower():
        score += 1.0
    if _acronym_starts_here(words, i):
        score += 1.5
    if _title_case_share(words[:i]) >= 0.7:
        score += 1.0
    content_after = [w for w in after if w[:1].isalpha() and w.lower() not in SMALL_WORDS]
    if content_after:
        score -= 1.5 * sum(_is_capitalised(w) for w in content_after) / len(content_after)
    if prev.lower() in SMALL_WORDS:
        score -= 2.0
    return score


def split_title(text: str, known_titles: Iterable[str] = ()) -> tuple[str, str]:
    """Split `text` into (title, abstract); raise ValueError when no border is plausible."""
    text = " ".join(text.split())
    norm_text = normalise_title(text)
    best_known = ""
    for title in known_titles:
        norm = normalise_title(title)
        if norm and norm_text.startswith(norm + " ") and len(norm) > len(normalise_title(best_known)):
            best_known = title
    if best_known:
        n_words = len(best_known.split())
        words = text.split(" ")
        return " ".join(words[:n_words]), " ".join(words[n_words:])

    words = text.split(" ")
    best: tuple[float, int] | None = None
    for i in range(_MIN_TITLE_WORDS, min(len(words) - 1, _MAX_TITLE_WORDS + 1)):
        score = _border_score(words, i)
        if score is not None and (best is None or score > best[0]):
            best = (score, i)
    if best is None:
        raise ValueError("cannot tell where the title ends and the abstract begins")
    i = best[1]
    return " ".join(words[:i]), " ".join(words[i:])
