"""What the answerability model sees: features of each retrieved paper and of each of its sentences.

Everything here is computed by the pipeline anyway (ranks and scores of dense and BM25 retrieval, the
title match, sentence cosines, lexical overlap, name coverage, the question's intent and the kind of
detail it asks for); this module only lays them out as named numbers. The model's weights are fitted on
the `train` split by `python -m rag.eval.fit` (rag.answer.answerability reads them), so a feature's name is
part of the fitted file: renaming one means refitting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from rag.answer.details import Detail, names_detail, states_detail, states_number
from rag.answer.intent import Intent
from rag.answer.names import mentioned_in
from rag.answer.sources import Source
from rag.index.bm25 import Weight, tokens
from rag.text import content_terms, overlap

INTENTS: tuple[Intent, ...] = ("list", "explain", "compare", "detail", "lookup")

PAPER_FEATURES = (
    *(f"intent_{i}" for i in INTENTS),
    "asks_detail",
    "has_names",
    "unknown_names",  # share of the question's names the collection never mentions
    "unknown_rare_terms",  # share of the question's word weight (IDF) in names and terms the collection never uses
    "unknown_common_terms",  # ... in everyday words it never uses
    "rank_inv",
    "dense_rank_inv",
    "dense_score",
    "bm25_rank_inv",
    "bm25_score",
    "title_match",
    "rare_name",
    "max_cos",
    "top2_cos",
    "cos_gap",  # the best paper's max_cos minus this one's
    "coverage",  # share of the question's content words in title + abstract
    "weighted_coverage",  # the same, each word weighted by its IDF in the collection
    "sentence_weighted_coverage",  # the best single sentence's
    "title_coverage",
    "best_overlap",
    "name_coverage",  # share of the question's names this paper mentions
    "name_in_lead",  # a question name in the title or the first two sentences (not just listed later)
    "detail_stated",  # a detail of the kind asked, stated in one of the three closest sentences
    "detail_missing",
    "detail_unnamed",  # a detail is asked and the abstract never names it (the setting, what is counted, the metric)
    "rare_term_mentions",  # how often the question's rarest known word occurs (title twice), up to 4, as a share
    "rare_term_in_title",
    "previous_turn",  # cited by the previous answer
    "previous_refers",  # ... and the question refers back
)

# What the question model uses: 15 of the question-level numbers question_features computes. There is one row
# per question (a few hundred in train), so few features. Chosen on dev among three sets fitted on train: these
# (dev log-loss .195, AUC .954), forward selection by cross-validated log-loss on train (9 features: .256, .908)
# and all 33 (.252, .913).
QUESTION_FEATURES = (
    "asks_detail",
    "has_names",
    "unknown_names",
    "unknown_rare_terms",
    "unknown_common_terms",
    "question_terms",  # how many content words: a short question has low cosines with anything
    "refers_back",
    "top_relevance",  # the paper model's probability for the most relevant paper
    "top_max_cos",
    "top_weighted_coverage",
    "top_name_coverage",
    "top_title_match",  # names the paper's title and asks no specific detail
    "top_subject_mentions",  # a short question's subject (its rarest word): how much the paper is about it
    "top_detail_missing",
    "top_detail_unnamed",
)

SENTENCE_FEATURES = (
    "paper_prob",
    "cos",
    "cos_rank_inv",
    "cos_gap",  # the paper's best sentence cosine minus this one's
    "overlap",
    "names",
    "is_first",
    "is_last",
    "position",
    "has_number",
    "number_asked",
    "detail_stated",
    "result_cue",
    "background_cue",
    "definition_cue",
    "contribution_cue",
    "anaphor_start",
    "length",
    "explain_first",
)

_RESULT_RE = re.compile(
    r"\b(we (?:\w+ )?(?:show|find|prove|demonstrate|establish|observe|obtain|achieve|report|reveal|confirm)"
    r"|results? (?:show|demonstrate|indicate|suggest|reveal)|outperform\w*|achiev\w*|improv\w* (?:by|over|upon)"
    r"|reduc\w* \w+ (?:by|to)|state-of-the-art|significantly|leads? to|yields?|is (?:exactly|at least|at most))\b",
    re.IGNORECASE,
)
_BACKGROUND_RE = re.compile(
    r"\b(has (?:a )?long history|have been (?:widely|extensively)|recent(?:ly)?|in recent years|however|despite"
    r"|remains? (?:unclear|open|poorly|challenging|elusive)|little is known|has attracted|widely used|popular"
    r"|is (?:a|an) (?:important|fundamental|central|key|crucial))\b",
    re.IGNORECASE,
)
_DEFINITION_RE = re.compile(
    r"\b(is defined as|refers? to|we (?:call|term|dub|coin)|(?:called|known as|dubbed|termed)"
    r"|(?:is|are) (?:a|an) (?:\w+ ){0,3}(?:method|framework|technique|approach|model|algorithm))\b",
    re.IGNORECASE,
)
_CONTRIBUTION_RE = re.compile(
    r"\b(we|this (?:paper|work|note|article|manuscript)|the authors)\s+(?:\w+\s+)?"
    r"(propose|present|introduce|show|study|develop|identify|extend|consider|investigate|argue|prove|establish"
    r"|demonstrate|derive|provide|analy[sz]e|find)",
    re.IGNORECASE,
)
ANAPHOR_START_RE = re.compile(
    r"^\s*(this|these|those|such|it|its|they|their|thus|therefore|hence|to (?:remedy|address|overcome|solve|tackle"
    r"|fix|mitigate) (?:this|these|that|them|it)|in (?:this|that|these) (?:case|cases|setting|work)"
    r"|as a result|consequently|moreover|furthermore|in addition|additionally|instead)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class QuestionFacts:
    """What is known of the question before any paper is scored."""

    intent: Intent
    detail: Detail | None
    names: tuple[str, ...]
    unknown: tuple[str, ...]  # names the collection never mentions
    terms: tuple[str, ...]  # content words
    refers_back: bool = False
    weights: tuple[Weight, ...] = ()  # each word's BM25 token and IDF, and whether the collection knows it


@lru_cache(maxsize=8192)
def _token_set(text: str) -> frozenset[str]:
    return frozenset(tokens(text))


def _weighted(weights: tuple[Weight, ...], text: str) -> float:
    """Share of the question's IDF weight whose tokens `text` uses."""
    total = sum(w.idf for w in weights)
    if not total:
        return 0.0
    have = _token_set(text)
    return sum(w.idf for w in weights if w.token in have) / total


def _unknown_names(q: QuestionFacts) -> float:
    return len(q.unknown) / len(q.names) if q.names else 0.0


def _unknown_terms(q: QuestionFacts, common: bool) -> float:
    """Share of the question's IDF weight in words the collection never uses: everyday English words
    ("music"), or not (names, jargon: "rwkv", "simclr")."""
    total = sum(w.idf for w in q.weights)
    return sum(w.idf for w in q.weights if not w.known and w.common == common) / total if total else 0.0


def _closest(source: Source, qvec: np.ndarray) -> np.ndarray:
    if source.vectors is None or not len(source.vectors):
        return np.zeros(len(source.sentences))
    return np.asarray(source.vectors @ qvec, dtype=float)


def paper_features(
    q: QuestionFacts, question: str, sources: list[Source], qvec: np.ndarray, previous: set[str]
) -> list[dict[str, float]]:
    """One feature row per source, in source order."""
    cosines = [_closest(s, qvec) for s in sources]
    best_cos = max((float(c.max()) for c in cosines if len(c)), default=0.0)
    known = [w for w in q.weights if w.known]
    rare = max(known, key=lambda w: w.idf).token if known else ""
    rows = []
    for source, cos in zip(sources, cosines, strict=True):
        sig = source.hit.signals
        order = np.argsort(-cos) if len(cos) else np.array([], dtype=int)
        top = [float(cos[i]) for i in order[:2]]
        text = f"{source.title}. {source.abstract}"
        lead = f"{source.title}. {' '.join(source.sentences[:2])}"
        title_terms = set(content_terms(source.title))
        named = [n for n in q.names if mentioned_in(n, text)]
        stated = q.detail is not None and any(
            cos[i] >= 0.2 and states_detail(q.detail, question, source.sentences[i]) for i in order[:3]
        )
        rows.append(
            {
                **{f"intent_{i}": float(q.intent == i) for i in INTENTS},
                "asks_detail": float(q.detail is not None),
                "has_names": float(bool(q.names)),
                "unknown_names": _unknown_names(q),
                "unknown_rare_terms": _unknown_terms(q, common=False),
                "unknown_common_terms": _unknown_terms(q, common=True),
                "rank_inv": 1.0 / source.number,
                "dense_rank_inv": 1.0 / sig["dense_rank"] if "dense_rank" in sig else 0.0,
                "dense_score": float(sig.get("dense_score", 0.0)),
                "bm25_rank_inv": 1.0 / sig["bm25_rank"] if "bm25_rank" in sig else 0.0,
                "bm25_score": float(sig.get("bm25_score", 0.0)),
                "title_match": float(sig.get("title_match", 0.0)),
                "rare_name": float(sig.get("rare_name", 0.0)),
                "max_cos": top[0] if top else 0.0,
                "top2_cos": float(np.mean(top)) if top else 0.0,
                "cos_gap": best_cos - (top[0] if top else 0.0),
                "coverage": overlap(list(q.terms), source.all_terms | title_terms),
                "weighted_coverage": _weighted(q.weights, text),
                "sentence_weighted_coverage": max((_weighted(q.weights, x) for x in source.sentences), default=0.0),
                "title_coverage": overlap(list(q.terms), title_terms),
                "best_overlap": max((overlap(list(q.terms), t) for t in source.terms), default=0.0),
                "name_coverage": len(named) / len(q.names) if q.names else 0.0,
                "name_in_lead": float(any(mentioned_in(n, lead) for n in named)),
                "detail_stated": float(stated),
                "detail_missing": float(q.detail is not None and not stated),
                "detail_unnamed": float(q.detail is not None and not names_detail(q.detail, text)),
                "rare_term_mentions": min(4, tokens(text).count(rare) + tokens(source.title).count(rare)) / 4,
                "rare_term_in_title": float(rare in _token_set(source.title)),
                "previous_turn": float(source.hit.paper_id in previous),
                "previous_refers": float(source.hit.paper_id in previous and q.refers_back),
            }
        )
    return rows


def question_features(q: QuestionFacts, rows: list[dict[str, float]], relevance: list[float]) -> dict[str, float]:
    """The question-level row: what the question asks, and how well its most relevant paper covers it (the
    question model uses QUESTION_FEATURES of it; the rest explain a decision, and were tried)."""
    order = sorted(range(len(rows)), key=lambda i: -relevance[i])
    top = rows[order[0]] if order else dict.fromkeys(PAPER_FEATURES, 0.0)
    return {
        **{f"intent_{i}": float(q.intent == i) for i in INTENTS},
        "asks_detail": float(q.detail is not None),
        "has_names": float(bool(q.names)),
        "unknown_names": _unknown_names(q),
        "unknown_rare_terms": _unknown_terms(q, common=False),
        "unknown_common_terms": _unknown_terms(q, common=True),
        "top_relevance": relevance[order[0]] if order else 0.0,
        "second_relevance": relevance[order[1]] if len(order) > 1 else 0.0,
        "top_max_cos": top["max_cos"],
        "best_max_cos": max((r["max_cos"] for r in rows), default=0.0),
        "top_coverage": top["coverage"],
        "top_weighted_coverage": top["weighted_coverage"],
        "top_sentence_weighted_coverage": top["sentence_weighted_coverage"],
        "top_name_coverage": top["name_coverage"],
        "top_names_missing": (1.0 - top["name_coverage"]) if q.names else 0.0,
        "top_named_general": top["name_in_lead"] * (q.detail is None),
        "top_rare_in_title_general": top["rare_term_in_title"] * (q.detail is None),
        "question_terms": min(len(q.terms), 12) / 12,
        "top_subject_mentions": top["rare_term_mentions"] * (len(q.terms) <= 4),
        "top_name_in_lead": top["name_in_lead"],
        "top_title_match": top["title_match"] * (q.detail is None),
        "top_title_match_detail": top["title_match"] * (q.detail is not None),
        "top_detail_stated": top["detail_stated"],
        "top_detail_missing": top["detail_missing"],
        "top_detail_unnamed": top["detail_unnamed"],
        "top_rare_term_mentions": top["rare_term_mentions"],
        "top_rare_term_in_title": top["rare_term_in_title"],
        "any_detail_stated": max((rows[i]["detail_stated"] for i in order[:3]), default=0.0),
        "refers_back": float(q.refers_back),
    }


def sentence_features(
    q: QuestionFacts, question: str, source: Source, qvec: np.ndarray, paper_prob: float
) -> list[dict[str, float]]:
    """One feature row per sentence of `source`, in the abstract's order."""
    cos = _closest(source, qvec)
    best = float(cos.max()) if len(cos) else 0.0
    ranks = {int(i): r for r, i in enumerate(np.argsort(-cos), start=1)} if len(cos) else {}
    n = len(source.sentences)
    rows = []
    for i, sentence in enumerate(source.sentences):
        has_number = states_number(sentence)
        rows.append(
            {
                "paper_prob": paper_prob,
                "cos": float(cos[i]) if len(cos) else 0.0,
                "cos_rank_inv": 1.0 / ranks.get(i, n),
                "cos_gap": best - (float(cos[i]) if len(cos) else 0.0),
                "overlap": overlap(list(q.terms), source.terms[i]) if i < len(source.terms) else 0.0,
                "names": sum(mentioned_in(name, sentence) for name in q.names) / len(q.names) if q.names else 0.0,
                "is_first": float(i == 0),
                "is_last": float(i == n - 1),
                "position": i / max(1, n - 1),
                "has_number": float(has_number),
                "number_asked": float(has_number and q.detail is not None and q.detail.kind == "number"),
                "detail_stated": float(q.detail is not None and states_detail(q.detail, question, sentence)),
                "result_cue": float(bool(_RESULT_RE.search(sentence))),
                "background_cue": float(bool(_BACKGROUND_RE.search(sentence))),
                "definition_cue": float(bool(_DEFINITION_RE.search(sentence))),
                "contribution_cue": float(bool(_CONTRIBUTION_RE.search(sentence))),
                "anaphor_start": float(bool(ANAPHOR_START_RE.search(sentence))),
                "length": min(len(sentence.split()), 60) / 60,
                "explain_first": float(q.intent == "explain" and i == 0),
            }
        )
    return rows
