"""Fit the answerability model: `python -m rag.eval.fit` → rag/data/answerability.json.

1. Every `train` item is run through the question's path (rag.answer.ask.prepare: follow-up, search,
   sources) on a fresh index of the bundled collection, with its conversation as the chat passes it.
2. Paper rows: the features of each retrieved paper of an answerable item, labelled 1 when it is a gold
   paper. Question rows: one per item, labelled 1 when the collection answers it; their paper-relevance
   features come from out-of-fold paper predictions (folds of items), as noisy as at run time. Sentence
   rows: the sentences of the retrieved papers of items with answer facts, labelled 1 when the sentence
   holds a fact of a gold paper (with out-of-fold relevance too).
3. Three standardised logistic regressions (scikit-learn, L2) are fitted; the thresholds are chosen on
   `dev` for the precisions stated below; `test` and `test-v1` are never read.
Deterministic: the same data gives the same file. Prints log-loss, Brier score and AUC on train and dev.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import rag
from rag.answer.answerability import Logistic, model_file
from rag.answer.ask import prepare
from rag.answer.features import (
    PAPER_FEATURES,
    QUESTION_FEATURES,
    SENTENCE_FEATURES,
    paper_features,
    question_features,
    sentence_features,
)
from rag.index.paper_index import PaperIndex

from .datasets import TRAIN_QUESTIONS, history_for, load_items
from .metrics import normalise

# The question model has one row per item (a few hundred): stronger regularisation, C chosen among 0.1…3 by
# 5-fold cross-validated log-loss on train. The paper and sentence models have thousands of rows and use C=1.
QUESTION_C = 0.3
# The precision each threshold is chosen for, on dev.
ANSWER_PRECISION = 0.95  # of the questions answered, the share the collection does answer
LIST_PRECISION = 0.85  # of the papers "which papers…" answers name, the share that fit (pooled over answers)
STRONG_PRECISION = 0.95  # of the answers shown as "strong", the share whose best paper is a gold one


def rows_of(index: PaperIndex, items: list[dict[str, Any]], settings: rag.Settings) -> list[dict[str, Any]]:
    """Per item: its paper feature rows, their labels, and what the sentence rows need."""
    out = []
    for item in items:
        request = prepare(index, item["question"], history_for(item), settings)
        gold = set(item["gold_titles"])
        previous = set(request.followup.previous_cited)
        rows = paper_features(request.facts, request.question, request.sources, request.qvec, previous)
        labels = [int(src.title in gold) for src in request.sources]
        out.append({"item": item, "request": request, "rows": rows, "labels": labels})
    return out


def sentence_rows(
    data: list[dict[str, Any]], paper_probs: list[np.ndarray]
) -> tuple[list[dict[str, float]], list[int]]:
    rows: list[dict[str, float]] = []
    labels: list[int] = []
    for entry, probs in zip(data, paper_probs, strict=True):
        facts = [normalise(f) for f in entry["item"].get("answer_facts") or []]
        if not facts:
            continue
        request = entry["request"]
        for source, p, is_gold in zip(request.sources, probs, entry["labels"], strict=True):
            feats = sentence_features(request.facts, request.question, source, request.qvec, float(p))
            for sentence, row in zip(source.sentences, feats, strict=True):
                rows.append(row)
                labels.append(int(bool(is_gold) and any(f in normalise(sentence) for f in facts)))
    return rows, labels


def fit_logistic(
    rows: list[dict[str, float]], labels: Sequence[int], features: tuple[str, ...], c: float = 1.0
) -> Logistic:
    from sklearn.linear_model import LogisticRegression

    x = np.array([[r[f] for f in features] for r in rows], dtype=float)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    lr = LogisticRegression(C=c, max_iter=5000)
    lr.fit((x - mean) / scale, np.asarray(labels))
    return Logistic(features, mean, scale, lr.coef_[0], float(lr.intercept_[0]))


def answerable(entry: dict[str, Any]) -> bool:
    return bool(entry["item"]["kind"] != "unanswerable")


def fit_paper(data: list[dict[str, Any]]) -> Logistic:
    """P(a paper answers | the collection answers the question): fitted on the answerable items."""
    kept = [e for e in data if answerable(e)]
    return fit_logistic([r for e in kept for r in e["rows"]], [y for e in kept for y in e["labels"]], PAPER_FEATURES)


def out_of_fold(data: list[dict[str, Any]], folds: int = 5) -> list[np.ndarray]:
    """Each item's paper relevance from a paper model fitted without the item's fold."""
    result: list[np.ndarray] = [np.zeros(0)] * len(data)
    for k in range(folds):
        model = fit_paper([e for i, e in enumerate(data) if i % folds != k])
        for i in range(k, len(data), folds):
            result[i] = model.predict(data[i]["rows"])
    return result


def question_rows(data: list[dict[str, Any]], relevance: list[np.ndarray]) -> list[dict[str, float]]:
    return [
        question_features(e["request"].facts, e["rows"], [float(x) for x in r])
        for e, r in zip(data, relevance, strict=True)
    ]


def lowest_threshold(
    scores: Sequence[float], good: Sequence[bool], precision: float, already: tuple[int, int] = (0, 0)
) -> float:
    """The lowest threshold at which the items scoring at least it are good at the stated precision (counted
    together with `already` = (good, all) items that are in whatever the threshold)."""
    pairs = sorted(zip(scores, good, strict=True), key=lambda p: -p[0])
    best, (hits, n) = 1.0, already
    for i, (score, is_good) in enumerate(pairs, start=1):
        hits, n = hits + is_good, n + 1
        if hits / n >= precision and (i == len(pairs) or pairs[i][0] < score):  # not inside a run of ties
            best = score
    return round(float(best), 4)


def thresholds(dev: list[dict[str, Any]], relevance: list[np.ndarray], answerable_p: np.ndarray) -> dict[str, Any]:
    good = [answerable(e) for e in dev]
    answer_t = lowest_threshold([float(p) for p in answerable_p], good, ANSWER_PRECISION)
    joint = [float(a * r.max()) if len(r) else 0.0 for a, r in zip(answerable_p, relevance, strict=True)]
    top_gold = [bool(len(r)) and bool(e["labels"][int(np.argmax(r))]) for e, r in zip(dev, relevance, strict=True)]
    strong_t = lowest_threshold(joint, top_gold, STRONG_PRECISION)
    listed: list[tuple[float, bool]] = []
    tops = [0, 0]  # the best paper is always named: (gold, all)
    for e, r in zip(dev, relevance, strict=True):
        if e["request"].intent == "list" and answerable(e) and len(r):
            top = int(np.argmax(r))
            tops[0] += e["labels"][top]
            tops[1] += 1
            listed += [(float(r[i]), bool(e["labels"][i])) for i in range(len(r)) if i != top]
    scores_, good_ = [s for s, _ in listed], [g for _, g in listed]
    list_t = lowest_threshold(scores_, good_, LIST_PRECISION, (tops[0], tops[1])) if listed else 0.5
    return {
        "answer": {
            "value": answer_t,
            "chosen_for": f"lowest at which, on dev, >= {ANSWER_PRECISION} of the questions answered are answerable",
        },
        "listed": {
            "value": list_t,
            "chosen_for": f"lowest at which, on dev, >= {LIST_PRECISION} of the papers list answers name fit",
        },
        "strong": {
            "value": strong_t,
            "chosen_for": f"lowest at which, on dev, >= {STRONG_PRECISION} of 'strong' answers cite a gold paper",
        },
    }


def scores(model: Logistic, rows: list[dict[str, float]], labels: list[int]) -> dict[str, float]:
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    p = model.predict(rows)
    y = np.asarray(labels)
    return {
        "rows": len(rows),
        "positives": int(y.sum()),
        "log_loss": round(float(log_loss(y, p, labels=[0, 1])), 4),
        "brier": round(float(brier_score_loss(y, p)), 4),
        "auc": round(float(roc_auc_score(y, p)), 4) if 0 < y.sum() < len(y) else float("nan"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.eval.fit", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out", type=Path, default=model_file(), help="where to write the model (default: the shipped one)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rag-fit-") as folder:
        settings = rag.Settings(index_dir=Path(folder) / "index", _env_file=None)  # type: ignore[call-arg]
        rag.ingest(settings=settings, progress=False)
        index = PaperIndex(settings)
        train = rows_of(index, load_items(split="train"), settings)
        dev = rows_of(index, load_items(split="dev"), settings)
        index.close()
    paper = fit_paper(train)
    oof = out_of_fold(train)
    labels = [int(answerable(e)) for e in train]
    q_rows = question_rows(train, oof)
    question = fit_logistic(q_rows, labels, QUESTION_FEATURES, QUESTION_C)
    s_rows, s_labels = sentence_rows(train, oof)
    sentence = fit_logistic(s_rows, s_labels, SENTENCE_FEATURES)
    dev_relevance = [paper.predict(e["rows"]) for e in dev]
    dev_q_rows = question_rows(dev, dev_relevance)
    dev_answerable = question.predict(dev_q_rows)
    dev_s_rows, dev_s_labels = sentence_rows(dev, dev_relevance)
    answerable_train = [e for e in train if answerable(e)]
    answerable_dev = [e for e in dev if answerable(e)]
    report = {
        "question": {
            "train": scores(question, q_rows, labels),
            "dev": scores(question, dev_q_rows, [int(answerable(e)) for e in dev]),
        },
        "paper": {
            "train": scores(paper, [r for e in answerable_train for r in e["rows"]],
                            [y for e in answerable_train for y in e["labels"]]),
            "dev": scores(paper, [r for e in answerable_dev for r in e["rows"]],
                          [y for e in answerable_dev for y in e["labels"]]),
        },
        "sentence": {"train": scores(sentence, s_rows, s_labels), "dev": scores(sentence, dev_s_rows, dev_s_labels)},
    }  # fmt: skip
    model = {
        "question": question.to_dict(),
        "paper": paper.to_dict(),
        "sentence": sentence.to_dict(),
        "thresholds": thresholds(dev, dev_relevance, dev_answerable),
        "meta": {
            "command": "python -m rag.eval.fit",
            "train_items": len(train),
            "train_sha256": hashlib.sha256(TRAIN_QUESTIONS.read_bytes()).hexdigest(),
            "dev_items": len(dev),
            "scores": report,
        },
    }
    args.out.write_text(json.dumps(model, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({"thresholds": model["thresholds"], "scores": report}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
