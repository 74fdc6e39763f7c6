"""What shape of answer a question wants: a list of papers, an explanation, a comparison, a detail, or a lookup.

The intent decides how many papers and sentences an answer quotes (see
answerers/extractive.py) and what a chat model is asked for (prompts.py). The
patterns read the question's form ("which papers…", "how does…"), not its topic,
so they carry over to questions nobody tuned on.
"""

from __future__ import annotations

import re
from typing import Literal

from rapidfuzz import process
from rapidfuzz.distance import OSA

from rag.answer.details import asked_detail
from rag.tokens import english_words

Intent = Literal["list", "explain", "compare", "detail", "lookup"]

_PAPERS = r"(papers?|works?|stud(?:y|ies)|articles?|publications?|approaches|methods|research)"
_LIST_RE = re.compile(
    r"^\s*(?:(?:which|what)\s+(?:other\s+|\w+\s+){0,2}(?:papers|works|studies|articles|publications)\b"
    rf"|(?:are|were)\s+there\s+(?:any\s+|other\s+|more\s+|some\s+)*{_PAPERS}"
    rf"|(?:is|was)\s+there\s+any\s+(?:other\s+|more\s+)*{_PAPERS}"
    rf"|any\s+(?:other\s+|more\s+)*{_PAPERS}\b"
    rf"|(?:list|name|find|show)\s+(?:me\s+)?(?:all\s+|the\s+|some\s+|any\s+)*(?:\w+\s+)?{_PAPERS}"
    rf"|(?:does|do|did)\s+(?:the\s+collection|anyone|any\s+(?:other\s+|more\s+)*{_PAPERS})"
    r"|has\s+anyone\s+else)",
    re.IGNORECASE,
)
# "Which paper / work / study …": the answer is a paper, whatever else the question mentions ("how much memory").
_ASKS_FOR_PAPER_RE = re.compile(
    r"^\s*(which|what|is there an?|are there|find|list|name)\s+(\w+\s+)?(papers?|works?|stud(y|ies)|articles?)\b",
    re.IGNORECASE,
)
_COMPARE_RE = re.compile(
    r"\b(compare[sd]?|comparison|versus|vs\.?|differ(?:s|ence|ent)? (?:from|between)|difference between"
    r"|contrast(?:s|ed|ing)? (?:with|to)|relate to|relationship between)\b",
    re.IGNORECASE,
)
_EXPLAIN_RE = re.compile(
    r"^\s*(what\s+(?:is|are|does|do|did|was|were)\b|how\s+(?:does|do|did|can|could|is|are|would)\b|why\b"
    r"|explain|summari[sz]e|describe|tell me about|in what way)",
    re.IGNORECASE,
)


# The words that give a question its form, to read through a typo ("wich papers", "summerize").
_FORM_WORDS = (
    "which what papers paper works studies articles publications compare comparison versus difference between "
    "explain summarise summarize describe there other another".split()
)


def _typos_fixed(question: str) -> str:
    """The question with a misspelt form word (one edit away, 4+ letters, not itself a word) written right."""
    words = english_words()

    def fix(match: re.Match[str]) -> str:
        word = match.group(0)
        if len(word) < 4 or word.lower() in words or word.lower() in _FORM_WORDS:
            return word
        near = process.extractOne(word.lower(), _FORM_WORDS, scorer=OSA.distance, score_cutoff=1)
        return str(near[0]) if near else word

    return re.sub(r"[A-Za-z]+", fix, question)


def detect_intent(question: str) -> Intent:
    """The answer shape `question` asks for; "lookup" (the single best passage) when none stands out."""
    question = _typos_fixed(question)
    if _LIST_RE.search(question):
        return "list"
    if _COMPARE_RE.search(question):
        return "compare"
    if not _ASKS_FOR_PAPER_RE.search(question) and asked_detail(question) is not None:
        return "detail"
    if _EXPLAIN_RE.search(question):
        return "explain"
    return "lookup"
