"""The evaluation set is well-formed: exact gold titles, answer facts literally in a gold abstract, four splits, and
a blind test split that is the file whose sha256 was committed before anything was fitted."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from rag.eval.datasets import EVAL_FILES, TEST_QUESTIONS, check_frozen, load_items
from rag.eval.metrics import MISSES, normalise

import rag

ITEMS = load_items()
FIRST = [json.loads(line) for line in (Path(__file__).resolve().parents[1] / "eval" / "questions.jsonl").open()]
ABSTRACTS = {p.title: p.abstract for p in rag.load_corpus()}


EVERYTHING = normalise(" ".join(f"{t} {a}" for t, a in ABSTRACTS.items()))


def test_size_kinds_and_ids() -> None:
    kinds = Counter(i["kind"] for i in ITEMS)
    assert len(ITEMS) >= 500
    assert set(kinds) == {"single", "multi", "title", "unanswerable", "followup"}
    assert min(kinds.values()) >= 60, kinds
    assert len({i["id"] for i in ITEMS}) == len(ITEMS)


def test_every_item_is_in_one_split_and_the_blind_test_split_covers_every_kind() -> None:
    assert Counter(i["split"] for i in ITEMS).keys() == {"train", "dev", "test", "test-v1"}
    test_kinds = Counter(i["kind"] for i in ITEMS if i["split"] == "test")
    assert sum(test_kinds.values()) >= 150 and min(test_kinds.values()) >= 25, test_kinds
    assert {i["split"] for i in load_items(TEST_QUESTIONS)} == {"test"}
    # The first 159 items keep their splits: the ones written before the first split were studied while tuning.
    assert all(i["split"] == "dev" for i in FIRST if "-v2-" not in i["id"])
    assert Counter(i["split"] for i in FIRST) == {"dev": 109, "test-v1": 50}
    assert len(EVAL_FILES) == 3


def test_the_blind_test_file_is_the_one_frozen_before_fitting() -> None:
    check_frozen()  # sha256 committed in eval/test_questions.sha256 before the answerability model was fitted


def test_multi_items_list_two_or_more_papers() -> None:
    for item in ITEMS:
        if item["kind"] == "multi":
            assert len(item["gold_titles"]) >= 2, item["id"]


def test_unanswerable_items_say_what_is_missing_and_absent_names_are_absent() -> None:
    for item in ITEMS:
        if item["kind"] != "unanswerable":
            assert "miss" not in item and "absent_names" not in item, item["id"]
            continue
        assert item["miss"] in MISSES, item["id"]
        if item["miss"] == "unknown_name":  # the name no abstract mentions (a metric item may list one too)
            assert item["absent_names"], item["id"]
        for name in item.get("absent_names", []):
            assert normalise(name) not in EVERYTHING, (item["id"], name)


def test_gold_titles_are_exact_corpus_titles() -> None:
    for item in ITEMS:
        assert all(t in ABSTRACTS for t in item["gold_titles"]), item["id"]
        assert (item["kind"] == "unanswerable") == (item["gold_titles"] == []), item["id"]


def test_answer_facts_are_literally_in_a_gold_abstract() -> None:
    for item in ITEMS:
        golds = [normalise(ABSTRACTS[t]) for t in item["gold_titles"]]
        for fact in item["answer_facts"]:
            assert any(normalise(fact) in g for g in golds), (item["id"], fact)


def test_followups_have_a_history_of_question_answer_pairs_citing_real_papers() -> None:
    for item in ITEMS:
        if item["kind"] == "followup":
            roles = [t["role"] for t in item["history"]]
            assert roles and roles == ["user", "assistant"] * (len(roles) // 2), item["id"]
            assert item["followup_type"] in {"dependent", "standalone"}, item["id"]
            for turn in item["history"]:
                assert all(t in ABSTRACTS for t in turn.get("cited_titles", [])), item["id"]
        else:
            assert "history" not in item and "followup_type" not in item, item["id"]
