"""The question sets: the evaluation set and the small retrieval set that tests and benchmarks share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
QUESTIONS = HERE / "questions.jsonl"
RETRIEVAL_QUESTIONS = HERE / "retrieval_questions.jsonl"


SPLITS = ("dev", "test", "all")


def load_items(path: Path = QUESTIONS, limit: int | None = None, split: str = "all") -> list[dict[str, Any]]:
    """Items of an evaluation set (JSONL) in `split` ("all": every item), the first `limit` of them if given.

    `dev` items are for tuning; `test` items are for reporting and are not studied one by one.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    items = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
    if split != "all":
        items = [i for i in items if i.get("split") == split]
        if not items:
            raise ValueError(f"{path} has no items in the {split!r} split (items mark it with a 'split' field)")
    return items[:limit] if limit else items


def retrieval_questions() -> list[tuple[str, str]]:
    """(paraphrased question, the title of the paper it is about): hand-written, avoiding the title's words."""
    return [(item["question"], item["title"]) for item in load_items(RETRIEVAL_QUESTIONS)]
