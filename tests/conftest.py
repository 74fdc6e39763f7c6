"""Test isolation: every test gets its own index directory (and Library); one bundled index is shared read-only."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Nothing in the suite may reach the network: make the libraries that could try say so loudly.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
for var in (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "RAG_CHROMA_HOST",
    "RAG_CHROMA_PORT",
    "RAG_LLM",
    "RAG_EMBEDDING_BASE_URL",
    "RAG_EMBEDDING_API_KEY",
):
    os.environ.pop(var, None)

import rag  # noqa: E402
from rag.config import Settings  # noqa: E402
from rag.library import forget_library  # noqa: E402
from tests.helpers import make_settings  # noqa: E402


@pytest.fixture(scope="session")
def bundled_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of an index holding the bundled collection, built once per session."""
    settings = make_settings(tmp_path_factory.mktemp("bundled-index"))
    rag.ingest(settings=settings, progress=False)
    return settings


@pytest.fixture
def fresh_settings(tmp_path: Path) -> Iterator[Settings]:
    """Settings of an empty index of this test's own."""
    settings = make_settings(tmp_path / "index")
    yield settings
    forget_library(settings)


# Whole modules that start servers, browsers, subprocesses of the CLI or llama.cpp: the full suite runs them
# (scripts/test.sh); `pytest -m "not slow"` leaves them out for the inner loop.
SLOW_MODULES = {
    "test_bench_scripts.py",
    "test_chroma_server.py",
    "test_cli.py",
    "test_embedding_server.py",
    "test_errors.py",
    "test_eval_run.py",
    "test_int8_embedder.py",
    "test_local_model.py",
    "test_offline.py",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath))
        if path.name in SLOW_MODULES or path.parent.name == "e2e":
            item.add_marker(pytest.mark.slow)
