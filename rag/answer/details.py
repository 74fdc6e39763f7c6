"""Specific details: does a question ask for one (a number, a training setting, a formula), and does a
sentence state it? Features of the answerability model (rag.answer.features), not a veto: a question that
asks for a number is less likely to be answered by a paper none of whose relevant sentences states one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from rag.text import content_terms, numbers

_NUMBER_Q = re.compile(
    r"\b(how (many|much|large|big|long|fast|often|high|low|small|deep|wide|accurate)"
    r"|what (percentage|fraction|proportion|number|amount)|by how (much|many)"
    r"|(what|which) (exact )?(value|score|accuracy|error rate|speed-?up|count)"
    r"|what (is|was|were|are) the (exact |reported |final )?(number|value|accuracy|error|score|percentage|size"
    r"|speed-?up|count|dimension|depth|width|cost|budget|runtime|throughput))\b",
    re.IGNORECASE,
)
_METRIC_WORDS = (
    r"accuracy|score|rate|error|perplexity|f1|auc|bleu|rouge|precision|recall|speed-?up|throughput|latency"
    r"|loss|reward|performance|memory|fid|mse|mae|rmse"
)
# "What <metric> does X reach?" asks for the number, whatever the verb.
_METRIC_Q = re.compile(
    rf"\bwhat\s+((?:[\w\-]+\s+){{0,3}}?(?:{_METRIC_WORDS}))\s+(?:does|did|do|is|was|were|can|could|would|has|have)\b",
    re.IGNORECASE,
)
_PERCENT_METRICS = {"accuracy", "error", "rate", "precision", "recall", "f1", "score"}
_METRIC_RE = re.compile(rf"\b({_METRIC_WORDS})\b", re.IGNORECASE)
_SETTINGS = (
    "learning rate",
    "batch size",
    "epoch",
    "optimizer",
    "weight decay",
    "dropout",
    "warmup",
    "hyperparameter",
    "random seed",
    "gpu",
    "tpu",
    "training time",
    "wall-clock",
    "hardware",
    "momentum",
    "license",
    "code release",
    "github",
)
_VALUED_SETTINGS = {
    "learning rate", "batch size", "epoch", "weight decay", "dropout", "warmup", "random seed", "momentum",
    "training time", "wall-clock",
}  # fmt: skip
_FORMULA_Q = re.compile(r"\b(formula|equation|closed[- ]form|expression for|derivation|derive|pseudo-?code)\b", re.I)
_MATHY = re.compile(r"[=^_\\]|\b(closed-form|formula|equation|proportional to|scales as|O\()", re.I)


@dataclass(frozen=True)
class Detail:
    kind: Literal["number", "setting", "formula"]
    phrase: str
    counted: str = ""  # "how many training tasks": what is counted ("task", stemmed), for number questions


_NUMBER_WORDS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve fifteen twenty thirty forty fifty hundred "
    "hundreds thousand thousands million millions billion billions trillion dozen dozens half twice".split()
)
_HOW_MANY_RE = re.compile(
    r"\bhow many\s+((?:[\w\-]+\s+){0,3}?)([\w\-]+)(?=\s+(?:are|is|was|were|did|does|do|have|has|had|in|of|on|for"
    r"|can|could|would|the|it|they|this|that|we|you)\b|\s*[?.!]|\s*$)",
    re.IGNORECASE,
)
_TOKEN_RE = re.compile(r"[\w\-.,%×]+")


def states_number(sentence: str) -> bool:
    """Whether a sentence states a quantity, in digits or in words ("nearly one million GPU hours")."""
    return bool(numbers(sentence)) or any(w in _NUMBER_WORDS for w in re.findall(r"[a-z]+", sentence.lower()))


def _counts(sentence: str, counted: str) -> bool:
    """Whether a quantity stands within three words before what is counted ("142M images", "one million GPU hours")."""
    words = _TOKEN_RE.findall(sentence.lower())
    for i, word in enumerate(words):
        if content_terms(word)[:1] == [counted]:
            before = words[max(0, i - 3) : i]
            if any(re.search(r"\d", w) or w in _NUMBER_WORDS for w in before):
                return True
    return False


def asked_detail(question: str) -> Detail | None:
    """The specific kind of detail the question asks for, if any (callers ignore it for "which papers…")."""
    low = question.lower()
    many = _HOW_MANY_RE.search(question)
    if many:  # "how many GPU hours": a count, whatever it counts
        counted = content_terms(many.group(2))[:1]
        return Detail("number", many.group(0), counted[0] if counted else "")
    for setting in _SETTINGS:
        # Asked for ("what learning rate…", "which optimizer…"), not merely mentioned ("models trained from
        # different random seeds").
        if re.search(r"\b(what|which|how)\b.*\b" + re.escape(setting), low):
            return Detail("setting", setting)
    if _FORMULA_Q.search(question):
        return Detail("formula", _FORMULA_Q.search(question).group(0))  # type: ignore[union-attr]
    m = _NUMBER_Q.search(question) or _METRIC_Q.search(question)
    if m:
        return Detail("number", m.group(0))
    return None


def states_detail(detail: Detail, question: str, sentence: str) -> bool:
    """Whether `sentence` states the kind of detail asked, about the question's subject."""
    if detail.kind == "setting":
        named = all(t in content_terms(sentence) for t in content_terms(detail.phrase))
        # "trained from different random seeds" names the setting without stating it: a valued one needs a number.
        return named and (detail.phrase not in _VALUED_SETTINGS or bool(numbers(sentence)))
    if detail.kind == "formula":
        return bool(_MATHY.search(sentence))
    if detail.counted:
        return _counts(sentence, detail.counted)
    terms = set(content_terms(sentence))
    subject = set(content_terms(question)) - set(content_terms(detail.phrase))
    # A number about something else is not the answer: when a metric is asked for, the sentence names it.
    metric = _METRIC_RE.search(detail.phrase)
    # "achieved 88.53% on CIFAR-100" states an accuracy without the word; "18x less memory" does not.
    as_percent = metric is not None and metric.group(1).lower() in _PERCENT_METRICS and "%" in sentence
    if metric and not set(content_terms(metric.group(1))) <= terms and not as_percent:
        return False
    return bool(numbers(sentence)) and (not subject or bool(subject & terms))


def names_detail(detail: Detail, text: str) -> bool:
    """Whether `text` (a whole abstract) even names what is asked for: the setting ("weight decay"), what is
    counted ("epochs"), the metric ("AUC", or a percentage for accuracy-like ones), or any mathematics for a
    formula. An abstract that never names it cannot state it."""
    if detail.kind == "formula":
        return bool(_MATHY.search(text))
    metric = _METRIC_RE.search(detail.phrase) if detail.kind == "number" and not detail.counted else None
    if detail.kind == "number" and not detail.counted and metric is None:
        return states_number(text)  # a bare "how large / how fast": any quantity may be it
    wanted = content_terms(detail.phrase) if detail.kind == "setting" else [detail.counted] if detail.counted else []
    if metric is not None:
        wanted = content_terms(metric.group(1))
        if metric.group(1).lower() in _PERCENT_METRICS and "%" in text:
            return True
    have = set(content_terms(text))
    return all(t in have for t in wanted)
