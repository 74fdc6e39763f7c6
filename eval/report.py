"""Write an evaluation's results.json, per_question.jsonl, report.md and PNG plots."""

from __future__ import annotations

import json
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from .metrics import MISSES, by_kind, why_bad

TABLE_METRICS = [
    "items", "hit@1", "hit@5", "mrr", "recall@5", "recall@10", "gold_cited", "gold_cited_single",
    "gold_cited_followup", "gold_cited_followup_dependent", "gold_cited_followup_standalone",
    "citation_precision", "citation_recall", "multi_citation_recall", "multi_citation_precision",
    "hallucinated_citations", "unsupported_numbers_shown", "unanswerable_abstained",
    *(f"unanswerable_abstained_{m}" for m in MISSES),
    "wrongly_abstained", "answer_facts", "topic_carry_over", "errors",
]  # fmt: skip
PACKAGES = ["paper-rag", "chromadb", "langchain-core", "langchain-openai", "gradio", "onnxruntime", "llama-cpp-python"]


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _metrics_table(runs: dict[str, Any], previous: dict[str, Any] | None) -> list[str]:
    labels = list(runs)
    head = "| metric | " + " | ".join(labels) + (" | Δ vs previous (first run) |" if previous else " |")
    lines = [head, "|" + "---|" * (len(labels) + 1 + bool(previous))]
    prev_metrics = None
    if previous:
        prev_metrics = previous["runs"].get(labels[0], next(iter(previous["runs"].values())))["metrics"]
    for metric in TABLE_METRICS:
        row = f"| {metric} | " + " | ".join(_fmt(runs[label]["metrics"].get(metric)) for label in labels) + " |"
        if prev_metrics is not None:
            now, before = runs[labels[0]]["metrics"].get(metric), prev_metrics.get(metric)
            delta = f"{now - before:+.3f}" if isinstance(now, int | float) and isinstance(before, int | float) else "–"
            row += f" {delta} |"
        lines.append(row)
    for stage in ("retrieval", "generation", "verification", "total", "first_text"):
        cells = []
        for label in labels:
            lat = runs[label]["metrics"]["latency_ms"].get(stage)
            cells.append(f"{lat['p50']:.0f} / {lat['p95']:.0f}" if lat else "–")
        lines.append(f"| latency {stage} p50 / p95 (ms) | " + " | ".join(cells) + (" | |" if previous else " |"))
    briers = [_fmt((runs[label]["metrics"].get("reliability") or {}).get("brier")) for label in labels]
    lines.append("| answerability Brier score (papers) | " + " | ".join(briers) + (" | |" if previous else " |"))
    return lines


def _latencies_ms(records: list[dict[str, Any]]) -> list[float]:
    return [sum(r["timings"].values()) * 1000 for r in records if r.get("timings")]


def _plots(out: Path, runs: dict[str, Any]) -> list[str]:
    files = []
    kinds = ["single", "title", "followup", "multi", "unanswerable"]
    shown = [("hit@5", "hit@5"), ("gold_cited", "gold cited"), ("answer_facts", "answer facts")]
    fig, axes = plt.subplots(1, len(shown) + 1, figsize=(16, 4), sharey=True)
    width = 0.8 / max(1, len(runs))
    for ax, (metric, title) in zip(axes, [*shown, ("unanswerable_abstained", "abstained")], strict=True):
        for i, (label, run) in enumerate(runs.items()):
            per_kind = by_kind(run["records"])
            values = [(per_kind.get(k) or {}).get(metric) or 0 for k in kinds]
            ax.bar([x + i * width for x in range(len(kinds))], values, width, label=label)
        ax.set_xticks([x + width * (len(runs) - 1) / 2 for x in range(len(kinds))], kinds, rotation=30)
        ax.set_title(title)
        ax.set_ylim(0, 1.05)
    axes[0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(out / "metrics_by_kind.png", dpi=110)
    plt.close(fig)
    files.append("metrics_by_kind.png")

    fig, ax = plt.subplots(figsize=(8, 4))
    data = [
        [sum(r["timings"].values()) * 1000 for r in run["records"] if r.get("timings")] or [0] for run in runs.values()
    ]
    ax.boxplot(data, showfliers=True)
    ax.set_xticks(range(1, len(runs) + 1), [label[:40] for label in runs], rotation=15, fontsize=7)
    ax.set_ylabel("ask() latency (ms)")
    ax.set_yscale("log")
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=110)
    plt.close(fig)
    files.append("latency.png")

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    for label, run in runs.items():
        bins = run["metrics"].get("reliability", {}).get("bins", [])
        if bins:
            ax.plot([b["predicted"] for b in bins], [b["observed"] for b in bins], marker="o", label=label[:40])
            for b in bins:
                ax.annotate(str(b["papers"]), (b["predicted"], b["observed"]), fontsize=6, xytext=(3, -8),
                            textcoords="offset points")  # fmt: skip
    ax.set_xlabel("predicted P(the paper answers)")
    ax.set_ylabel("observed share of gold papers")
    ax.set_title("Answerability model: reliability (papers per bin)")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(out / "reliability.png", dpi=110)
    plt.close(fig)
    files.append("reliability.png")
    return files


def write_outputs(out: Path, runs: dict[str, Any], compare: Path | None, interrupted: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    previous = json.loads((compare / "results.json").read_text()) if compare else None
    versions = _versions()
    results: dict[str, Any] = {
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "interrupted": interrupted,
        "versions": versions,
        "runs": {label: {"config": run["config"], "metrics": run["metrics"], "by_kind": by_kind(run["records"])}
                 for label, run in runs.items()},
    }  # fmt: skip
    (out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    with (out / "per_question.jsonl").open("w", encoding="utf-8") as f:
        for run in runs.values():
            for record in run["records"]:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
    plots = _plots(out, runs) if any(run["records"] for run in runs.values()) else []

    lines = [
        "# Evaluation report",
        "",
        f"{results['created']} · " + ", ".join(f"{k} {v}" for k, v in versions.items()),
    ]
    if interrupted:
        lines += ["", "**Interrupted: the numbers cover only the items finished.**"]
    lines += ["", "## Metrics", "", *_metrics_table(runs, previous), ""]
    for label, run in runs.items():
        if run["config"].get("split") == "test":
            # Reading held-out items one by one turns them into tuning items; the aggregates above are enough.
            lines += [f"## Worst items: {label}", "", "Not listed for the `test` split: tune on `dev`.", ""]
            continue
        worst = sorted(((why_bad(r), r) for r in run["records"]), key=lambda x: -x[0][0])[:10]
        lines += [f"## Worst items: {label}", "", "| id | kind | question | why |", "|---|---|---|---|"]
        for (badness, why), r in worst:
            if badness > 0:
                lines.append(
                    f"| {r['id']} | {r['kind']} | {r['question'][:90].replace('|', '/')} | {why.replace('|', '/')} |"
                )
        lines.append("")
    lines += [f"![{p}]({p})" for p in plots]
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
