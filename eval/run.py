"""`rag eval` / `python -m rag.eval.run`: run the evaluation set through ask() and write metrics, report and plots."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import signal
import sys
import threading
import time
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

import rag
from rag.answer.answerers import ANSWERERS, backend_name
from rag.index.search import RETRIEVERS, k_value
from rag.local.server import LocalServer, running_local_model

from .datasets import SPLITS, history_for, load_items
from .metrics import score_item, summarise
from .report import write_outputs

HERE = Path(__file__).resolve().parent
THRESHOLDS = HERE / "thresholds.toml"


def _results_folder() -> Path:
    """eval/results in a source checkout; ./rag-eval when installed (never inside site-packages)."""
    return HERE / "results" if (HERE.parent / "pyproject.toml").is_file() else Path.cwd() / "rag-eval"


def run_one(
    items: list[dict[str, Any]],
    settings: rag.Settings,
    label: str,
    corpus: set[str],
    server: LocalServer | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Per-question records of one configuration, and why the run stopped early (None: it did not).

    A run stops at Ctrl-C, and when the local model server it started has died: the
    remaining questions could only fail the same way.
    """
    records: list[dict[str, Any]] = []
    try:
        for item in progress(items, label):
            record: dict[str, Any] = {"run": label, **{k: item[k] for k in ("id", "kind", "question", "gold_titles")}}
            record.update({k: item[k] for k in ("split", "followup_type", "miss", "styles") if k in item})
            try:
                answer = rag.ask(item["question"], history=history_for(item), settings=settings)
                # Retrieval as the answer saw it: without the papers a relative follow-up leaves out.
                leave_out = set(answer.excluded_titles)
                found = rag.search(answer.standalone_question, k=10 + len(leave_out), settings=settings)
                retrieved = [h.title for h in found if h.title not in leave_out][:10]
                data = answer.to_dict()
                record.update(
                    answer=data["text"],
                    citations=[c["title"] for c in data["citations"]],
                    standalone_question=data["standalone_question"],
                    confidence=data["confidence"],
                    first_text_seconds=data["first_text_seconds"],
                    abstained=data["abstained"],
                    retrieved=retrieved,
                    timings=data["timings"],
                    scores=score_item(item, data, retrieved, corpus),
                )
            except (rag.BackendError, rag.RagIndexError, ValueError) as exc:
                record.update(error=str(exc), timings={})
                if server is not None and (ended := server.exit()) is not None:
                    records.append(record)
                    return records, f"the local model server {ended.describe()}"
            records.append(record)
    except KeyboardInterrupt:
        return records, "interrupted"
    return records, None


def check_gate(name: str, metrics: dict[str, Any], thresholds: Path = THRESHOLDS) -> list[str]:
    """Threshold violations of gate `name`; a bound on a metric the run did not produce is one too.

    Keys are `min_<metric>` or `max_<metric>`, with "@" written "_at_" (hit_at_5 is hit@5).
    """
    gates = tomllib.loads(thresholds.read_text())
    if name not in gates:
        return [f"no gate named {name!r} in {thresholds.name} (gates: {', '.join(gates)})"]
    failures = []
    for key, limit in gates[name].items():
        bound, _, metric = key.partition("_")
        metric = metric.replace("_at_", "@")
        if bound not in ("min", "max") or not metric:
            failures.append(f"{key}: a bound must be named min_<metric> or max_<metric>")
            continue
        if metric not in metrics:
            known = ", ".join(k for k, v in metrics.items() if not isinstance(v, dict))
            failures.append(f"{key}: the run has no metric {metric!r} (known: {known})")
            continue
        value = metrics[metric]
        if not isinstance(value, int | float):
            failures.append(f"{key}: {metric} was not measured (no items of its kind in this run); use more items")
            continue
        if (bound == "max" and value > limit) or (bound == "min" and value < limit):
            failures.append(f"{metric} = {value} ({bound} {limit})")
    return failures


def progress(items: list[dict[str, Any]], label: str, every: float = 30.0) -> Iterator[dict[str, Any]]:
    """The items, with a progress bar on a terminal, else a line with the ETA every `every` seconds (a log)."""
    if sys.stderr.isatty():
        yield from tqdm(items, desc=label, unit="q", file=sys.stderr)
        return
    start = last = time.monotonic()
    for done, item in enumerate(items):
        now = time.monotonic()
        if done and now - last >= every:
            eta = (now - start) / done * (len(items) - done)
            print(f"{label}: {done}/{len(items)} done in {(now - start) / 60:.1f} min, about {eta / 60:.1f} min left",
                  file=sys.stderr, flush=True)  # fmt: skip
            last = now
        yield item


@contextlib.contextmanager
def maybe_local_model(enabled: bool, spec: str | None = None) -> Iterator[LocalServer | None]:
    """The local model `spec` (a name of `rag local-model --list` or a .gguf file) served for the run."""
    if not enabled:
        yield None
        return
    from rag.config import model_cache_dir
    from rag.local.catalog import resolve

    model, alias = resolve(spec, model_cache_dir())
    print(f"starting the local model {alias} (llama.cpp)…", file=sys.stderr)
    with running_local_model(model=model, alias=alias) as server:
        yield server


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rag eval", description="Evaluate retrieval, citations and abstention.")
    p.add_argument("--backend", action="append", choices=list(ANSWERERS), help="repeat to compare")
    p.add_argument("--retriever", action="append", choices=RETRIEVERS, help="repeat to compare")
    p.add_argument("--base-url", help="OpenAI-compatible server (Ollama, llama.cpp, vLLM); sets --backend openai")
    p.add_argument(
        "--model",
        help="chat model name for --backend openai; with --local, the local model (smollm2, qwen2.5-1.5b, FILE.gguf)",
    )
    p.add_argument("--local", action="store_true", help="start a local model for the run (default SmolLM2) and use it")
    p.add_argument("--k", type=k_value, default=5, help="sources per answer (default 5)")
    p.add_argument(
        "--split",
        action="append",
        choices=SPLITS,
        help="train (fit on), dev (tune on), test (report, blind), test-v1 (the earlier report split), all "
        "(default); repeatable",
    )
    p.add_argument("--limit", type=int, help="only the first N items (of each split)")
    p.add_argument("--questions", type=Path, default=None, help="one JSONL file (default: the three eval files)")
    p.add_argument(
        "--out", type=Path, help="output folder (default eval/results/<timestamp> in a checkout, else ./rag-eval/…)"
    )
    p.add_argument("--compare", type=Path, help="a previous output folder: adds a delta column")
    p.add_argument(
        "--gate", choices=["offline", "local"], help="exit 1 when eval/thresholds.toml's gate fails on the first run"
    )
    return p


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM ends the run like Ctrl-C: results written, local model stopped


def main(argv: Sequence[str] | None = None, settings: rag.Settings | None = None) -> int:
    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        splits = {split: load_items(args.questions, args.limit, split) for split in args.split or ["all"]}
    except (OSError, ValueError) as exc:
        print(f"rag eval: {exc}", file=sys.stderr)
        return 2
    out = args.out or _results_folder() / time.strftime("%Y%m%d-%H%M%S")
    base = (settings or rag.get_settings()).with_overrides(top_k=args.k)
    corpus = {p.title for p in rag.load_corpus()}
    runs: dict[str, dict[str, Any]] = {}
    interrupted = False
    with maybe_local_model(args.local, args.model) as server:
        overrides: dict[str, Any] = {}
        if server:
            # No token for 3 minutes is an error, not a hang (the timeout is per read of the stream), and a
            # retry would only wait that long again.
            overrides.update(openai_base_url=server.url, chat_model=server.alias, llm_timeout=180, llm_max_retries=0)
        if args.base_url:
            overrides["openai_base_url"] = args.base_url
        if args.model and not args.local:
            overrides["chat_model"] = args.model
        default_backend = "openai" if (server or args.base_url) else "extractive"
        configs = itertools.product(args.backend or [default_backend], args.retriever or ["hybrid"], splits)
        for backend, retriever, split in configs:
            settings = base.with_overrides(llm=backend, retriever=retriever, **overrides)
            label = f"{backend_name(settings)} + {retriever} · {split}"
            records, stopped = run_one(splits[split], settings, label, corpus, server)
            runs[label] = {
                "config": {"backend": backend_name(settings), "retriever": retriever, "split": split, "k": args.k},
                "records": records,
                "metrics": summarise(records),
            }
            if stopped:
                interrupted = True
                print(f"rag eval: {stopped}; writing what was finished", file=sys.stderr)
                break
    write_outputs(out, runs, args.compare, interrupted)
    print(f"results in {out}")
    # The gate judges the first run (first backend × retriever × split); the others are for comparison.
    first = next(iter(runs), None)
    failures = [f"{first}: {f}" for f in check_gate(args.gate, runs[first]["metrics"])] if args.gate and first else []
    for failure in failures:
        print(f"GATE FAILED {failure}", file=sys.stderr)
    if args.gate and not failures:
        print(f"gate '{args.gate}' passed")
    return 1 if failures or interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
