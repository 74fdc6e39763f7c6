"""The evaluation set is well-formed: exact gold titles, answer facts literally in a gold abstract."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import rag
from eval.metrics import normalise

ITEMS = [json.loads(line) for line in (Path(__file__).resolve().parents[1] / "eval" / "questions.jsonl").open()]
ABSTRACTS = {p.title: p.abstract for p in rag.load_corpus()}


def test_size_kinds_and_ids() -> None:
    kinds = Counter(i["kind"] for i in ITEMS)
    assert len(ITEMS) >= 60
    assert set(kinds) == {"single", "multi", "title", "unanswerable", "followup"}
    assert len({i["id"] for i in ITEMS}) == len(ITEMS)


def test_gold_titles_are_exact_corpus_titles() -> None:
    for item in ITEMS:
        assert all(t in ABSTRACTS for t in item["gold_titles"]), item["id"]
        assert (item["kind"] == "unanswerable") == (item["gold_titles"] == []), item["id"]


def test_answer_facts_are_literally_in_a_gold_abstract() -> None:
    for item in ITEMS:
        golds = [normalise(ABSTRACTS[t]) for t in item["gold_titles"]]
        for fact in item["answer_facts"]:
            assert any(normalise(fact) in g for g in golds), (item["id"], fact)


def test_followups_have_a_two_turn_history() -> None:
    for item in ITEMS:
        if item["kind"] == "followup":
            assert [t["role"] for t in item["history"]] == ["user", "assistant"], item["id"]
