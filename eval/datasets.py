"""The question sets: the evaluation set (three files, four splits) and the small retrieval set.

- `questions.jsonl`: the first 159 hand-checked items: `dev` (109, studied while tuning) and `test-v1` (50, the
  earlier report split, kept so that numbers stay comparable).
- `train_questions.jsonl`: 240 items to fit the answerability model on (`train`).
- `test_questions.jsonl`: 160 items (`test`) written from the abstracts alone by people who never ran the system,
  frozen before anything was fitted: its sha256 is committed in `test_questions.sha256` and checked on load.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
QUESTIONS = HERE / "questions.jsonl"
TRAIN_QUESTIONS = HERE / "train_questions.jsonl"
TEST_QUESTIONS = HERE / "test_questions.jsonl"
TEST_SHA256 = HERE / "test_questions.sha256"
EVAL_FILES = (QUESTIONS, TRAIN_QUESTIONS, TEST_QUESTIONS)
RETRIEVAL_QUESTIONS = HERE / "retrieval_questions.jsonl"

SPLITS = ("train", "dev", "test", "test-v1", "all")
# The writers of the newer files named two kinds of miss differently; one vocabulary for the metrics.
_MISS_NAMES = {"absent_name": "unknown_name"}


class FrozenSetChanged(ValueError):
    """The frozen test file is not the one whose sha256 was committed before fitting."""


def check_frozen(path: Path = TEST_QUESTIONS) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    expected = TEST_SHA256.read_text().strip()
    if digest != expected:
        raise FrozenSetChanged(f"{path.name} has sha256 {digest}, not the frozen {expected}: restore it from git")


def _read(path: Path) -> list[dict[str, Any]]:
    if path == TEST_QUESTIONS:
        check_frozen(path)
    items = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
    for item in items:
        if "miss" in item:
            item["miss"] = _MISS_NAMES.get(item["miss"], item["miss"])
    return items


def load_items(path: Path | None = None, limit: int | None = None, split: str = "all") -> list[dict[str, Any]]:
    """Items in `split` ("all": every item) of one file, or of all three evaluation files when `path` is None;
    the first `limit` of them if given.

    Fit on `train`, choose thresholds and study items on `dev`; `test` and `test-v1` are for reporting
    and are not studied one by one.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    items = [item for file in ([path] if path else EVAL_FILES) for item in _read(file)]
    if split != "all":
        items = [i for i in items if i.get("split") == split]
        if not items:
            where = path or "the evaluation files"
            raise ValueError(f"{where} has no items in the {split!r} split (items mark it with a 'split' field)")
    return items[:limit] if limit else items


def retrieval_questions() -> list[tuple[str, str]]:
    """(paraphrased question, the title of the paper it is about): hand-written, avoiding the title's words."""
    return [(item["question"], item["title"]) for item in load_items(RETRIEVAL_QUESTIONS)]


def history_for(item: dict[str, Any]) -> list[dict[str, Any]] | None:
    """An item's conversation as `rag.ask(history=…)` takes it: an assistant turn's `cited_titles` become the
    paper ids it cited (`cited`), as the chat passes them; items written without them carry text only."""
    from rag.ingest.corpus import paper_id_for

    history = item.get("history")
    if not history:
        return None
    turns = []
    for turn in history:
        out: dict[str, Any] = {"role": turn["role"], "content": turn["content"]}
        if turn.get("cited_titles"):
            out["cited"] = [paper_id_for(t) for t in turn["cited_titles"]]
        turns.append(out)
    return turns
