"""The question sets: the evaluation set and the small retrieval set that tests and benchmarks share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
QUESTIONS = HERE / "questions.jsonl"
RETRIEVAL_QUESTIONS = HERE / "retrieval_questions.jsonl"


def load_items(path: Path = QUESTIONS, limit: int | None = None) -> list[dict[str, Any]]:
    """Items of an evaluation set (JSONL), the first `limit` of them if given."""
    items = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
    return items[:limit] if limit else items


def retrieval_questions() -> list[tuple[str, str]]:
    """(paraphrased question, the title of the paper it is about): hand-written, avoiding the title's words."""
    return [(item["question"], item["title"]) for item in load_items(RETRIEVAL_QUESTIONS)]
