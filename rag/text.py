"""Text helpers shared by ingest, index and answer: cleaning, sentences, content terms, title matching."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from bm25s.stopwords import STOPWORDS_EN
from rapidfuzz import fuzz, process

# --- cleaning and normalisation -----------------------------------------------------

_NON_WORD_RE = re.compile(r"[\W_]+", re.UNICODE)
# C0/C1 control characters except tab and newline.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Invisible format characters: bidirectional controls (U+202E makes "Survey \u202edetcarteR" display as "Survey
# Retracted") and zero-width characters that hide inside words (space, non-joiner, joiner, word joiner, BOM).
_INVISIBLE_RE = re.compile("[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")


def normalise_title(title: str) -> str:
    """Case-, accent-width- and punctuation-insensitive key for comparing titles."""
    folded = unicodedata.normalize("NFKC", title).casefold()
    return " ".join(_NON_WORD_RE.sub(" ", folded).split())


def strip_control(text: str) -> str:
    """`text` without control characters (each becomes a space: they could garble prompts, logs or the terminal)
    and without invisible bidi and zero-width characters (removed: they disguise what a title says)."""
    return _CONTROL_RE.sub(" ", _INVISIBLE_RE.sub("", text))


def has_surrogates(text: str) -> bool:
    """Whether `text` holds lone surrogates: undecodable bytes from argv, or JSON escapes such as \\ud800."""
    return _SURROGATE_RE.search(text) is not None


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


# --- sentences ----------------------------------------------------------------------

# A sentence ends at . ! or ? followed by space and a capital, digit, parenthesis or quote
# (not "[": a citation marker after a period belongs to the sentence before it)...
_BOUNDARY_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'“])")
# ...unless the period belongs to an abbreviation.
_ABBREVIATIONS = (
    *("e.g.", "i.e.", "et al.", "etc.", "fig.", "figs.", "eq.", "eqs.", "vs.", "cf.", "resp.", "approx.", "no."),
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


# --- content terms ------------------------------------------------------------------

_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9\-]*[A-Za-z0-9]|[A-Za-z]")
_NUMBER_RE = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?:\s?%|x|×)?")
# Words every question or abstract uses; they say nothing about which paper answers.
GENERIC = frozenset(
    "paper papers work study studies propose proposed show shows shown method methods approach approaches "
    "result results use used using based new novel also well can may might collection abstract abstracts "
    "authors author say says said tell explain describe describes described find found does do did "
    "question answer answers model models way ways many much one two first tldr tl summarise summarize summary "
    "summarising summarizing anyone someone somebody please know want need looking give show list idea main key "
    "like im thing things kind kinds sort".split()
)
FUNCTION_WORDS = frozenset(
    "a about above after again against all am an and any are aren as at be because been before being below "
    "between both but by could couldn did didn do does doesn doing don down during each few for from further "
    "had has have having he her here hers herself him himself his how i if in into is isn it its itself just "
    "me more most my myself no nor not now of off on once only or other our ours ourselves out over own same "
    "she should so some such than that the their theirs them themselves then there these they this those "
    "through to too under until up very was wasn we were weren what when where which while who whom why will "
    "with would you your yours yourself yourselves us via whether within without across along among upon "
    "onto toward towards per vs versus etc eg ie let lets get gets got make makes made give gives given".split()
)
_STOP = frozenset(STOPWORDS_EN) | FUNCTION_WORDS | GENERIC


@lru_cache(maxsize=1)
def stemmer():  # type: ignore[no-untyped-def]
    """The English Snowball stemmer (shared with BM25)."""
    import Stemmer

    return Stemmer.Stemmer("english")


def content_terms(text: str) -> list[str]:
    """Stemmed, lower-cased words that carry meaning (stop and generic words removed)."""
    words = [w.lower() for w in _WORD_RE.findall(text)]
    kept = [w for w in words if w not in _STOP and len(w) > 1]
    parts = [p for w in kept for p in ([w, *w.split("-")] if "-" in w else [w]) if p and p not in _STOP]
    return list(stemmer().stemWords(parts))


def overlap(needles: list[str], haystack: set[str]) -> float:
    """Share of `needles` found in `haystack` (0 when there are no needles)."""
    if not needles:
        return 0.0
    return sum(n in haystack for n in needles) / len(needles)


def numbers(text: str) -> set[str]:
    """The numbers a text states, normalised ("18 times" and "18x" both give "18")."""
    return {re.sub(r"[%x×\s]", "", m.group()).replace(",", "") for m in _NUMBER_RE.finditer(text)}


# --- titles -------------------------------------------------------------------------

_MIN_TITLE_CHARS = 12


def title_matches(query: str, titles: dict[str, str], threshold: float) -> dict[str, float]:
    """key -> fuzzy score for the titles (key -> title) that the query names, typos allowed.

    A partial ratio: the whole (normalised) title must appear in the query, nearly.
    """
    q = normalise_title(query)
    choices = {key: normalise_title(t) for key, t in titles.items()}
    choices = {key: t for key, t in choices.items() if _MIN_TITLE_CHARS <= len(t) <= len(q) + 3}
    found = process.extract(q, choices, scorer=fuzz.partial_ratio, score_cutoff=threshold, limit=5)
    return {key: float(score) for _, score, key in found}


def same_title(written: str, title: str, threshold: float) -> bool:
    """Whether a title written in an answer is `title` (whole-string fuzzy ratio, typos allowed)."""
    return fuzz.ratio(normalise_title(written), normalise_title(title)) >= threshold


# --- names -------------------------------------------------------------------------

# A word that is a name: an inner capital or digit (RoBERTa, DINOv2, GPT-NeoX-20B), all capitals (MMLU), or a
# capitalised word that does not start the sentence (the Gopher paper, Inception Score).
_NAME_TOKEN_RE = re.compile(r"(?<![\w\-])[A-Za-z][\w\-]*[\w]|(?<![\w\-])[A-Za-z]")
# A quote opens after a non-letter (so "I'm … teacher's" quotes nothing) and closes before one.
_QUOTED_NAME_RE = re.compile(r"(?<!\w)[\"“'‘]([^\"“”'’]{3,200})[\"”'’](?!\w)")
_COMMON_CAPITALISED = frozenset(
    "i what which who whom whose when where why how is are was were do does did can could should would will "
    "has have had any there this that these those the a an in on of for and or but if".split()
)


def _is_name(word: str, starts_sentence: bool) -> bool:
    if len(word) < 2 or word.lower() in FUNCTION_WORDS | GENERIC | _COMMON_CAPITALISED:
        return False
    inner = word[1:]
    if any(c.isupper() for c in inner) or any(c.isdigit() for c in word):
        return True
    return word[0].isupper() and not starts_sentence


def named_terms(question: str) -> list[str]:
    """The names a question uses: runs of name-like words, and quoted phrases."""
    names: list[str] = [m.group(1).strip() for m in _QUOTED_NAME_RE.finditer(question)]
    unquoted = _QUOTED_NAME_RE.sub(" . ", question)
    run: list[str] = []
    previous_end = ""
    for m in _NAME_TOKEN_RE.finditer(unquoted):
        gap = unquoted[len(previous_end) : m.start()] if previous_end else unquoted[: m.start()]
        starts_sentence = not previous_end or bool(re.search(r"[.!?:;]\s*$", gap))
        if _is_name(m.group(), starts_sentence) and (not run or gap.strip() == ""):
            run.append(m.group())
        else:
            if run:
                names.append(" ".join(run))
            run = [m.group()] if _is_name(m.group(), starts_sentence) else []
        previous_end = unquoted[: m.end()]
    if run:
        names.append(" ".join(run))
    return list(dict.fromkeys(names))
