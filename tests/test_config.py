"""Settings: every knob documented, in the code and in .env.example, and invalid values named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import AliasChoices

from rag.config import AnswerTuning, Settings, get_settings

ROOT = Path(__file__).resolve().parents[1]


def env_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        if name == "answer":
            names |= {f"RAG_ANSWER__{sub.upper()}" for sub in AnswerTuning.model_fields}
        elif isinstance(field.validation_alias, AliasChoices):
            names.add(str(field.validation_alias.choices[0]))
        else:
            names.add(f"RAG_{name.upper()}")
    return names


def test_every_setting_has_a_description() -> None:
    for model in (Settings, AnswerTuning):
        missing = [name for name, field in model.model_fields.items() if not field.description]
        assert missing == [], f"{model.__name__} fields without a description: {missing}"


def test_env_example_lists_exactly_the_settings_that_exist() -> None:
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    assert listed == env_names()


def test_nested_answer_thresholds_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_ANSWER__ANSWER_THRESHOLD", "0.3")
    assert Settings(_env_file=None).answer.answer_threshold == 0.3  # type: ignore[call-arg]
    monkeypatch.setenv("RAG_ANSWER__ANSWER_THRESHOLD", "7")
    get_settings.cache_clear()
    with pytest.raises(ValueError, match=r"RAG_ANSWER__ANSWER_THRESHOLD='7': Input should be less than or equal to 1"):
        get_settings()
    get_settings.cache_clear()
