"""`rag eval`: metrics on hand-made records, and a real run that writes every output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rag.eval.metrics import normalise, score_item, summarise
from rag.eval.run import check_gate, main

from rag.config import Settings


def test_normalise_ignores_case_space_and_latex() -> None:
    assert normalise("1-5\\% of  Neurons") == normalise("1-5% of neurons")
    assert normalise("w_{min}=\\max") == "w_min=max"


def record(kind: str, gold: list[str], cited: list[str], retrieved: list[str], abstained: bool = False) -> dict:
    item = {"kind": kind, "gold_titles": gold, "answer_facts": ["key fact"]}
    answer = {
        "text": "The key fact is here." if not abstained else "The collection does not answer this.",
        "citations": [{"title": t} for t in cited],
        "sources": [{"title": t} for t in retrieved[:5]],
        "abstained": abstained,
    }
    scores = score_item(item, answer, retrieved, corpus_titles={"A", "B", "C", "D"})
    return {"kind": kind, "gold_titles": gold, "scores": scores, "timings": {"retrieval": 0.01, "generation": 0.02}}


def test_a_number_no_cited_abstract_states_is_counted() -> None:
    item = {"kind": "single", "gold_titles": ["A"], "answer_facts": []}
    cited = [{"title": "A", "abstract": "Pruning keeps 90% of the accuracy with 10x fewer weights."}]
    sources = [{"title": "A"}]

    def scored(text: str, abstained: bool = False) -> dict:
        answer = {"text": text, "citations": cited, "sources": sources, "abstained": abstained}
        return {"kind": "single", "gold_titles": ["A"], "timings": {}, "scores": score_item(item, answer, ["A"], {"A"})}

    stated = scored("It keeps 90% of the accuracy [1] with 10 times fewer weights.")
    invented = scored("It keeps 95% of the accuracy [1].")  # the [1] marker is not a number
    assert stated["scores"]["unsupported_numbers"] == [] and invented["scores"]["unsupported_numbers"] == ["95"]
    assert summarise([stated, invented, scored("Nothing about 42.", abstained=True)])["unsupported_numbers_shown"] == 1


def test_summary_metrics() -> None:
    records = [
        record("single", ["A"], ["A"], ["A", "B"]),
        record("single", ["B"], ["A"], ["A", "B"]),
        record("multi", ["A", "C"], ["A", "C"], ["A", "B", "C"]),
        record("unanswerable", [], [], ["D"], abstained=True),
        record("unanswerable", [], ["Z"], ["D"]),
    ]
    m = summarise(records)
    assert m["hit@1"] == 0.5 and m["hit@5"] == 1.0 and m["mrr"] == 0.75
    assert m["recall@5"] == 1.0
    assert m["gold_cited"] == pytest.approx(2 / 3, abs=1e-3)
    assert m["citation_precision"] == 0.75 and m["citation_recall"] == 0.75
    assert m["hallucinated_citations"] == 1  # "Z" was shown but is neither retrieved nor in the corpus
    assert m["unanswerable_abstained"] == 0.5 and m["wrongly_abstained"] == 0.0
    assert m["answer_facts"] == 1.0
    assert m["latency_ms"]["total"]["p50"] == 30.0


def test_a_gate_on_a_missing_or_misspelled_metric_fails_loudly(tmp_path: Path) -> None:
    thresholds = tmp_path / "thresholds.toml"
    thresholds.write_text("[g]\nmin_hit_at_5 = 0.9\nmin_hit_at_50 = 0.9\nmax_halucinated_citations = 0\nbogus = 1\n")
    failures = check_gate("g", {"hit@5": 0.95, "hallucinated_citations": 0, "latency_ms": {}}, thresholds)
    assert len(failures) == 3
    assert "no metric 'hit@50'" in failures[0] and "no metric 'halucinated_citations'" in failures[1]
    assert "min_<metric>" in failures[2]
    assert "no gate named 'nope'" in check_gate("nope", {}, thresholds)[0]


def test_gate_reports_violations() -> None:
    ok = {
        "hallucinated_citations": 0,
        "errors": 0,
        "hit@5": 0.97,
        "unanswerable_abstained": 0.9,
        "wrongly_abstained": 0.0,
        "gold_cited_single": 0.95,
        "gold_cited_followup_dependent": 0.9,
        "gold_cited_followup_standalone": 1.0,
        "multi_citation_recall": 0.8,
        "multi_citation_precision": 0.9,
        "answer_facts": 0.7,
        "topic_carry_over": 0,
    }
    assert check_gate("offline", ok) == []
    bad = {**ok, "hallucinated_citations": 2, "hit@5": 0.5, "topic_carry_over": 1}
    assert len(check_gate("offline", bad)) == 3


def test_eval_run_writes_every_output_and_compares(bundled_settings: Settings, tmp_path: Path) -> None:
    out1, out2 = tmp_path / "one", tmp_path / "two"
    assert (
        main(["--limit", "4", "--out", str(out1), "--retriever", "bm25", "--retriever", "hybrid"], bundled_settings)
        == 0
    )
    results = json.loads((out1 / "results.json").read_text())
    assert set(results["runs"]) == {"extractive + bm25 · all", "extractive + hybrid · all"}
    assert results["versions"]["chromadb"]
    lines = (out1 / "per_question.jsonl").read_text().splitlines()
    assert len(lines) == 8 and {"answer", "citations", "scores"} <= set(json.loads(lines[0]))
    report = (out1 / "report.md").read_text()
    assert "| hit@5 |" in report and "![metrics_by_kind.png]" in report
    assert (out1 / "metrics_by_kind.png").stat().st_size > 1000 and (out1 / "latency.png").exists()

    assert main(["--limit", "4", "--out", str(out2), "--compare", str(out1), "--gate", "local"], bundled_settings) == 0
    assert "Δ vs previous" in (out2 / "report.md").read_text()


def test_splits_run_side_by_side_and_test_items_are_not_listed(bundled_settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "splits"
    assert main(["--limit", "3", "--out", str(out), "--split", "test", "--split", "dev"], bundled_settings) == 0
    results = json.loads((out / "results.json").read_text())
    assert list(results["runs"]) == ["extractive + hybrid · test", "extractive + hybrid · dev"]
    records = [json.loads(line) for line in (out / "per_question.jsonl").read_text().splitlines()]
    assert [r["split"] for r in records] == ["test"] * 3 + ["dev"] * 3
    report = (out / "report.md").read_text()
    test_section = report.split("## Worst items: extractive + hybrid · test")[1].split("## ")[0]
    assert "Not listed for the `test` split" in test_section
    assert not any(r["id"] in test_section for r in records if r["split"] == "test")


def test_an_unknown_split_is_refused(
    bundled_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "a", "kind": "single", "question": "q", "gold_titles": []}) + "\n")
    assert main(["--questions", str(questions), "--split", "test", "--out", str(tmp_path / "o")], bundled_settings) == 2
    assert "no items in the 'test' split" in capsys.readouterr().err


def test_a_gate_that_cannot_be_measured_fails(
    bundled_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Four single-paper items hold no unanswerable one: the offline gate cannot pass by skipping that bound."""
    assert main(["--limit", "4", "--out", str(tmp_path / "out"), "--gate", "offline"], bundled_settings) == 1
    assert "unanswerable_abstained was not measured" in capsys.readouterr().err
