"""Evaluation metrics over per-question records (pure functions; definitions in the README)."""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable
from typing import Any

from rag.answer.markers import MARKER_RE
from rag.text import numbers

RANKED_KINDS = ("single", "title", "followup")
MISSES = ("unknown_name", "missing_metric", "missing_detail", "listed_only", "off_topic")
Record = dict[str, Any]


def normalise(text: str) -> str:
    """Case-, whitespace- and LaTeX-insensitive form for matching answer facts."""
    text = re.sub(r"\\([a-zA-Z]+)", r"\1", text)  # \alpha -> alpha, \% -> %
    text = re.sub(r"[\\{}$]", "", text)
    return " ".join(text.lower().split())


def _mean(values: Iterable[float]) -> float | None:
    vals = list(values)
    return round(sum(vals) / len(vals), 4) if vals else None


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _rank(gold: list[str], ranked: list[str]) -> int | None:
    for i, title in enumerate(ranked, start=1):
        if title in gold:
            return i
    return None


def score_item(item: Record, answer: Record, retrieved: list[str], corpus_titles: set[str]) -> Record:
    """Per-question scores: retrieval rank, citation hits, hallucinations, abstention, facts."""
    gold = item["gold_titles"]
    cited = [c["title"] for c in answer["citations"]]
    sources = {s["title"] for s in answer["sources"]}
    hallucinated = [t for t in cited if t not in sources or t not in corpus_titles]
    rank = _rank(gold, retrieved) if gold else None
    facts = item.get("answer_facts") or []
    text = normalise(answer["text"])
    titles = {h.get("paper_id"): h["title"] for h in answer["sources"]}
    support = [[p, titles.get(pid) in gold] for pid, p in answer.get("paper_support", {}).items()]
    stated = numbers(" ".join(c.get("abstract") or c.get("evidence", "") for c in answer["citations"]))
    shown = set() if answer["abstained"] else numbers(MARKER_RE.sub(" ", answer["text"]))
    return {
        "rank": rank,
        "recall@5": len(set(gold) & set(retrieved[:5])) / len(gold) if gold else None,
        "recall@10": len(set(gold) & set(retrieved[:10])) / len(gold) if gold else None,
        "gold_cited": bool(set(gold) & set(cited)) if gold else None,
        "cited_recall": len(set(gold) & set(cited)) / len(gold) if gold else None,
        "cited_gold": len([t for t in cited if t in gold]),
        "cited": len(cited),
        "hallucinated": hallucinated,
        "unsupported_numbers": sorted(shown - stated),  # shown in the answer, stated by no cited abstract
        "abstained": bool(answer["abstained"]),
        "facts_found": sum(normalise(f) in text for f in facts),
        "facts_total": len(facts),
        # Searched with another turn's words although the question stands alone.
        "carried_over": answer.get("standalone_question", answer.get("question")) != answer.get("question"),
        "support": support,  # [P(the paper answers), whether it is gold] per source, for the reliability diagram
    }


def summarise(records: list[Record]) -> Record:
    """Aggregate metrics of one run (one backend × retriever) over its per-question records."""
    ok = [r for r in records if not r.get("error")]
    ranked = [r["scores"] for r in ok if r["kind"] in RANKED_KINDS]
    multi = [r["scores"] for r in ok if r["kind"] == "multi"]
    answerable = [r["scores"] for r in ok if r["kind"] != "unanswerable"]
    unanswerable = [r["scores"] for r in ok if r["kind"] == "unanswerable"]
    single = [r["scores"] for r in ok if r["kind"] in ("single", "title")]
    followup = {t: [r["scores"] for r in ok if r["kind"] == "followup" and r.get("followup_type") == t]
                for t in ("dependent", "standalone")}  # fmt: skip
    multi_cited = sum(s["cited"] for s in multi)
    cited = sum(s["cited"] for s in answerable)
    gold_total = sum(len(r["gold_titles"]) for r in ok if r["kind"] != "unanswerable")
    facts_total = sum(s["facts_total"] for s in answerable)
    timings: dict[str, list[float]] = {}
    for r in ok:
        for stage, seconds in r["timings"].items():
            timings.setdefault(stage, []).append(seconds)
        timings.setdefault("total", []).append(sum(r["timings"].values()))
    return {
        "items": len(records),
        "errors": len(records) - len(ok),
        "hit@1": _mean(s["rank"] == 1 for s in ranked),
        "hit@5": _mean(s["rank"] is not None and s["rank"] <= 5 for s in ranked),
        "mrr": _mean(1 / s["rank"] if s["rank"] else 0.0 for s in ranked),
        "recall@5": _mean(s["recall@5"] for s in multi),
        "recall@10": _mean(s["recall@10"] for s in multi),
        "gold_cited": _mean(bool(s["gold_cited"]) for s in answerable),
        "citation_precision": round(sum(s["cited_gold"] for s in answerable) / cited, 4) if cited else None,
        "citation_recall": round(sum(s["cited_gold"] for s in answerable) / gold_total, 4) if gold_total else None,
        "gold_cited_single": _mean(bool(s["gold_cited"]) for s in single),
        "gold_cited_followup": _mean(bool(s["gold_cited"]) for s in followup["dependent"] + followup["standalone"]),
        "gold_cited_followup_dependent": _mean(bool(s["gold_cited"]) for s in followup["dependent"]),
        "gold_cited_followup_standalone": _mean(bool(s["gold_cited"]) for s in followup["standalone"]),
        "multi_citation_recall": _mean(s["cited_recall"] for s in multi),
        "multi_citation_precision": round(sum(s["cited_gold"] for s in multi) / multi_cited, 4)
        if multi_cited
        else None,
        "hallucinated_citations": sum(len(r["scores"]["hallucinated"]) for r in ok),
        "unsupported_numbers_shown": sum(bool(r["scores"].get("unsupported_numbers")) for r in ok),
        "unanswerable_abstained": _mean(s["abstained"] for s in unanswerable),
        **{
            f"unanswerable_abstained_{miss}": _mean(r["scores"]["abstained"] for r in ok if r.get("miss") == miss)
            for miss in MISSES
        },
        "wrongly_abstained": _mean(s["abstained"] for s in answerable),
        "answer_facts": round(sum(s["facts_found"] for s in answerable) / facts_total, 4) if facts_total else None,
        "topic_carry_over": sum(bool(s.get("carried_over")) for s in followup["standalone"]),
        "reliability": reliability([pair for r in ok for pair in r["scores"].get("support", [])]),
        "latency_ms": {
            **{stage: _percentiles(v) for stage, v in timings.items()},
            **(
                {"first_text": _percentiles(first)}
                if (first := [r["first_text_seconds"] for r in ok if "first_text_seconds" in r])
                else {}
            ),
        },
    }


def reliability(pairs: list[list[Any]], bins: int = 10) -> dict[str, Any]:
    """Predicted P(the paper answers) against how often it did (is gold), in equal-width bins; Brier score."""
    if not pairs:
        return {"bins": [], "brier": None, "papers": 0}
    out = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [(p, g) for p, g in pairs if lo <= p < hi or (b == bins - 1 and p == 1.0)]
        if inside:
            out.append({
                "from": lo, "to": hi, "papers": len(inside),
                "predicted": round(sum(p for p, _ in inside) / len(inside), 4),
                "observed": round(sum(bool(g) for _, g in inside) / len(inside), 4),
            })  # fmt: skip
    brier = sum((p - bool(g)) ** 2 for p, g in pairs) / len(pairs)
    return {"bins": out, "brier": round(brier, 4), "papers": len(pairs)}


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered) * 1000, 1), "p95": round(p95 * 1000, 1)}


def by_kind(records: list[Record]) -> dict[str, Record]:
    kinds = sorted({r["kind"] for r in records})
    return {k: summarise([r for r in records if r["kind"] == k]) for k in kinds}


def why_bad(record: Record) -> tuple[float, str]:
    """(badness, reason) of one record, for the report's worst items."""
    if record.get("error"):
        return 10.0, f"error: {record['error']}"
    s = record["scores"]
    if s["hallucinated"]:
        return 9.0, f"hallucinated citation(s): {s['hallucinated']}"
    if record["kind"] == "unanswerable":
        return (5.0, "answered a question the collection does not answer") if not s["abstained"] else (0.0, "")
    reasons, bad = [], 0.0
    if s["abstained"]:
        bad += 4.0
        reasons.append("abstained on an answerable question")
    if s["rank"] is None and record["kind"] in RANKED_KINDS:
        bad += 3.0
        reasons.append("gold paper not retrieved in the top 10")
    elif s["rank"] and s["rank"] > 1:
        bad += 0.5
        reasons.append(f"gold paper ranked {s['rank']}")
    if s["gold_cited"] is False and not s["abstained"]:
        bad += 2.0
        reasons.append("gold paper not cited")
    if s["recall@10"] is not None and s["recall@10"] < 1 and record["kind"] == "multi":
        bad += 1.0 - s["recall@10"]
        reasons.append(f"multi recall@10 {s['recall@10']:.2f}")
    if s["facts_total"] and s["facts_found"] < s["facts_total"]:
        bad += 0.5 * (1 - s["facts_found"] / s["facts_total"])
        reasons.append(f"{s['facts_found']}/{s['facts_total']} answer facts")
    return bad, "; ".join(reasons)
