"""One calibrated decision: the probability that a retrieved paper, and each of its sentences, answers the question.

Three small logistic regressions over the features of rag.answer.features, fitted on the `train` split by
`python -m rag.eval.fit` and shipped as rag/data/answerability.json (weights, feature scaling, and thresholds
chosen on `dev` for a stated precision, which the file records):
- the question model: P(the collection answers the question) — what decides an abstention;
- the paper model: P(this paper is one that answers | the collection answers) — which papers, in what order;
- the sentence model: P(this sentence states the answer) — which sentences to quote.
A paper's probability of answering is the product of the first two. At run time this is a dot product and a
sigmoid: no scikit-learn. The answer is withheld below the answer threshold; a "which papers…" answer names
every paper over the list threshold; the support shown is "strong" over the strong threshold, else "partial".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rag.answer.features import (
    PAPER_FEATURES,
    QUESTION_FEATURES,
    SENTENCE_FEATURES,
    QuestionFacts,
    paper_features,
    question_features,
    sentence_features,
)
from rag.answer.sources import Source

Strength = Literal["strong", "partial"]


def model_file() -> Path:
    return Path(str(resources.files("rag") / "data" / "answerability.json"))


@dataclass(frozen=True)
class Logistic:
    """A fitted logistic regression over named features, standardised as when it was fitted."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Logistic:
        return cls(
            tuple(data["features"]),
            np.asarray(data["mean"], dtype=float),
            np.asarray(data["scale"], dtype=float),
            np.asarray(data["coef"], dtype=float),
            float(data["intercept"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "mean": [round(float(x), 6) for x in self.mean],
            "scale": [round(float(x), 6) for x in self.scale],
            "coef": [round(float(x), 6) for x in self.coef],
            "intercept": round(self.intercept, 6),
        }

    def matrix(self, rows: list[dict[str, float]]) -> np.ndarray:
        return np.array([[row[name] for name in self.features] for row in rows], dtype=float).reshape(
            len(rows), len(self.features)
        )

    def predict(self, rows: list[dict[str, float]]) -> np.ndarray:
        """P(answers) for each feature row."""
        if not rows:
            return np.zeros(0)
        z = ((self.matrix(rows) - self.mean) / self.scale) @ self.coef + self.intercept
        probs: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
        return probs


@dataclass(frozen=True)
class Thresholds:
    answer: float  # P(the collection answers) needed for an answer
    listed: float  # a further paper joins a "which papers…" or comparison answer at this relevance
    strong: float  # the support shown is "strong" from this probability (of the best paper) on


@dataclass(frozen=True)
class AnswerabilityModel:
    question: Logistic
    paper: Logistic
    sentence: Logistic
    thresholds: Thresholds
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None) -> AnswerabilityModel:
        data = json.loads((path or model_file()).read_text(encoding="utf-8"))
        model = cls(
            Logistic.from_dict(data["question"]),
            Logistic.from_dict(data["paper"]),
            Logistic.from_dict(data["sentence"]),
            Thresholds(**{k: float(v["value"]) for k, v in data["thresholds"].items()}),
            data.get("meta", {}),
        )
        expected = (QUESTION_FEATURES, PAPER_FEATURES, SENTENCE_FEATURES)
        fitted = (model.question.features, model.paper.features, model.sentence.features)
        if any(set(a) != set(b) for a, b in zip(expected, fitted, strict=True)):
            raise ValueError(
                f"{path or model_file()} was fitted on other features than rag.answer.features computes; "
                "refit it with `python -m rag.eval.fit`"
            )
        return model


@lru_cache(maxsize=4)
def load_model(path: Path | None = None) -> AnswerabilityModel:
    """The shipped model (or the one at `path`), read once."""
    return AnswerabilityModel.load(path)


@dataclass
class Decision:
    """What the model decided about one question's sources."""

    answerable: float  # P(the collection answers the question)
    relevance: list[float]  # per source: P(it is a paper that answers | the collection answers)
    answer: bool
    chosen: list[int]  # indexes of the sources the answer rests on, best first
    strength: Strength
    rows: list[dict[str, float]] = field(default_factory=list)  # the paper features
    question_row: dict[str, float] = field(default_factory=dict)

    @property
    def probabilities(self) -> list[float]:
        """Per source: P(it answers the question)."""
        return [self.answerable * r for r in self.relevance]

    @property
    def best(self) -> float:
        return max(self.probabilities, default=0.0)


def decide(
    model: AnswerabilityModel,
    facts: QuestionFacts,
    question: str,
    sources: list[Source],
    qvec: np.ndarray,
    previous: set[str] = frozenset(),  # type: ignore[assignment]
    answer_threshold: float | None = None,
    list_threshold: float | None = None,
) -> Decision:
    """Score every source and decide: answer or not, and from which papers (several for list and compare)."""
    rows = paper_features(facts, question, sources, qvec, previous)
    relevance = [float(p) for p in model.paper.predict(rows)]
    question_row = question_features(facts, rows, relevance)
    answerable = float(model.question.predict([question_row])[0]) if sources else 0.0
    t = model.thresholds
    answer_at = t.answer if answer_threshold is None else answer_threshold
    list_at = t.listed if list_threshold is None else list_threshold
    order = sorted(range(len(sources)), key=lambda i: -relevance[i])
    if not order or answerable < answer_at:
        return Decision(answerable, relevance, False, [], "partial", rows, question_row)
    chosen = [order[0]]
    if facts.intent in ("list", "compare"):
        chosen += [i for i in order[1:] if relevance[i] >= list_at]
        if facts.intent == "compare":
            chosen = chosen[:3]
    strength: Strength = "strong" if answerable * relevance[order[0]] >= t.strong else "partial"
    return Decision(answerable, relevance, True, chosen, strength, rows, question_row)


def would_answer_if_stated(model: AnswerabilityModel, decision: Decision, threshold: float) -> bool:
    """Whether a question withheld for a missing detail would be answered if its papers stated one: they are
    on its topic, and lack only the detail."""
    row = decision.question_row
    if not row.get("top_detail_missing"):
        return False
    stated = {
        **row,
        "top_detail_missing": 0.0,
        "top_detail_stated": 1.0,
        "any_detail_stated": 1.0,
        "top_detail_unnamed": 0.0,
    }
    return bool(model.question.predict([stated])[0] >= threshold)


def sentence_probabilities(
    model: AnswerabilityModel, facts: QuestionFacts, question: str, source: Source, qvec: np.ndarray, relevance: float
) -> np.ndarray:
    """P(this sentence states the answer) for each sentence of `source` (whose paper relevance is given)."""
    return model.sentence.predict(sentence_features(facts, question, source, qvec, relevance))
