"""Does the collection mention the names a question uses? Normalised the way people misspell names.

Names are what a reader cannot paraphrase away: models, datasets, metrics, methods, quoted titles.
A name counts as mentioned in a text when it appears there after folding case and accents, reading
hyphens and spaces alike ("Weisfeiler-Leman", "weisfeiler leman"), undoing a transliteration ("Goedel"
for "Gödel"), allowing one edit in a long word ("Transfomer"), or as an abbreviation the text spells
out ("LTH" for "lottery ticket hypothesis"). These are features of the answerability model, not a veto:
an unknown name makes an answer less likely, and the model learned by how much.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from functools import lru_cache

from rapidfuzz import process
from rapidfuzz.distance import OSA

_TOKEN_RE = re.compile(r"[a-z0-9]+")
_TRANSLITERATIONS = (("oe", "o"), ("ae", "a"), ("ue", "u"), ("ss", "s"))
_MIN_TYPO_LETTERS = 5  # one edit is a typo only in a word this long
_ACRONYM_RE = re.compile(r"^[A-Z][A-Za-z]?[A-Z0-9]{1,6}s?$")


def fold(text: str) -> str:
    """Lower case, accents removed, every non-alphanumeric run a single space."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(_TOKEN_RE.findall(plain.lower()))


def _spellings(name: str) -> set[str]:
    """The folded name, with and without its spaces, and with transliterations undone."""
    folded = fold(name)
    forms = {folded, folded.replace(" ", "")}
    for written, letter in _TRANSLITERATIONS:
        forms |= {f.replace(written, letter) for f in list(forms)}
    return {f for f in forms if f}


class FoldedText:
    """A text prepared for name lookups: its folded form, tokens, and word initials for abbreviations."""

    def __init__(self, text: str) -> None:
        self.folded = f" {fold(text)} "
        self.joined = self.folded.replace(" ", "")
        self.tokens = sorted(set(self.folded.split()))
        self.words = self.folded.split()

    def mentions(self, name: str) -> bool:
        spellings = _spellings(name)
        if any(f" {s} " in self.folded for s in spellings) or any(len(s) >= 8 and s in self.joined for s in spellings):
            return True
        if _ACRONYM_RE.match(name.strip()) and self._spells_out(name.strip().rstrip("s").lower()):
            return True
        return self._one_edit_away(fold(name))

    def _spells_out(self, acronym: str) -> bool:
        """Whether consecutive words start with the acronym's letters ("lth": "lottery ticket hypothesis")."""
        n = len(acronym)
        if n < 2 or not acronym.isalpha():
            return False
        initials = "".join(w[0] for w in self.words)
        return acronym in initials and any(
            initials[i : i + n] == acronym and all(len(w) > 1 for w in self.words[i : i + n])
            for i in range(len(initials) - n + 1)
        )

    def _one_edit_away(self, folded: str) -> bool:
        parts = folded.split()
        if not parts:
            return False
        return all(
            f" {p} " in self.folded
            or (len(p) >= _MIN_TYPO_LETTERS and process.extractOne(p, self.tokens, scorer=OSA.distance, score_cutoff=1))
            for p in parts
        )


@lru_cache(maxsize=4096)
def folded_text(text: str) -> FoldedText:
    return FoldedText(text)


def mentioned_in(name: str, text: str) -> bool:
    """Whether `text` mentions `name`, normalised as the module says."""
    return folded_text(text).mentions(name)


def unknown_names(names: Sequence[str], knows: Callable[[str], bool], texts: Sequence[str]) -> list[str]:
    """The names that neither the collection's vocabulary (`knows`, typos allowed) nor any of `texts`
    (the retrieved papers: abbreviations, transliterations, hyphenation) mentions."""
    unknown = []
    for name in names:
        if any(knows(s) for s in _spellings(name) if s) or any(mentioned_in(name, t) for t in texts):
            continue
        unknown.append(name)
    return unknown
