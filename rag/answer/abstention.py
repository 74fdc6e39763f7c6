"""When the collection does not answer: specific-detail checks and the abstention message.

A question that asks for a specific detail (a number, a training setting, a
formula) is only answered when a retrieved abstract states such a detail in a
sentence about the question's subject; otherwise the honest answer is "the
collection does not answer this", with the closest papers named.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rag.text import content_terms, numbers

ABSTAIN_PREFIX = "The collection does not answer this"

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


_ASKS_FOR_PAPER = re.compile(
    r"^\s*(which|what|is there an?|are there|find|list|name)\s+(\w+\s+)?(papers?|works?|stud(y|ies)|articles?)\b",
    re.IGNORECASE,
)


def asked_detail(question: str) -> Detail | None:
    """The specific kind of detail the question asks for, if any (not when it asks which paper)."""
    if _ASKS_FOR_PAPER.search(question):
        return None
    low = question.lower()
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
    terms = set(content_terms(sentence))
    subject = set(content_terms(question)) - set(content_terms(detail.phrase))
    # A number about something else is not the answer: when a metric is asked for, the sentence names it.
    metric = _METRIC_RE.search(detail.phrase)
    # "achieved 88.53% on CIFAR-100" states an accuracy without the word; "18x less memory" does not.
    as_percent = metric is not None and metric.group(1).lower() in _PERCENT_METRICS and "%" in sentence
    if metric and not set(content_terms(metric.group(1))) <= terms and not as_percent:
        return False
    return bool(numbers(sentence)) and (not subject or bool(subject & terms))


def abstention_text(closest: Sequence[str], reason: str = "") -> str:
    """The plain abstention, naming the closest papers found."""
    text = ABSTAIN_PREFIX + (f": {reason}." if reason else ".")
    if closest:
        text += " The closest papers it holds are: " + "; ".join(f"“{t}”" for t in closest[:3]) + "."
    return text
