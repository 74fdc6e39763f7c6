"""The `rag` command as a user runs it: a real subprocess per call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rag
from rag.config import Settings
from tests.helpers import run_rag

ROOT = Path(__file__).resolve().parents[1]


def test_search_json(bundled_settings: Settings) -> None:
    out = run_rag("search", "lottery tickets", "-k", "3", "--json", index_dir=bundled_settings.index_dir)
    assert out.returncode == 0, out.stderr
    hits = json.loads(out.stdout)
    assert len(hits) == 3 and {"paper_id", "title", "text", "score"} <= set(hits[0])
    assert any("Lottery" in h["title"] for h in hits)


def test_search_plain_text(bundled_settings: Settings) -> None:
    out = run_rag("search", "Emergent abilities of large language models", index_dir=bundled_settings.index_dir)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(
        "1. Emergent Abilities of Large Language Models\n   found by meaning #1 and keywords #"
    )
    assert "score" not in out.stdout  # RRF scores mean nothing to a reader
    snippets = [line.strip() for line in out.stdout.splitlines()[2::3]]
    assert len(snippets) == 5 and all(len(s) <= 240 for s in snippets)
    abstracts = " ".join(" ".join(p.abstract.split()) for p in rag.indexed_papers(bundled_settings))
    for snippet in snippets:  # cut between words: every word shown is a whole word of an abstract
        assert f"{snippet.removesuffix(' …')} " in abstracts + " ", snippet


def test_warm_ingest_reports_nothing_to_do(bundled_settings: Settings) -> None:
    out = run_rag("ingest", "--json", index_dir=bundled_settings.index_dir)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["papers"] == 248 and report["added"] == 0 and report["removed"] == 0


def test_bad_file_exits_2_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "mine.csv"
    bad.write_text("title,abstract\nA title,An abstract that is long enough to count\n,missing title\n")
    out = run_rag("ingest", str(bad), index_dir=tmp_path / "index")
    assert out.returncode == 2
    assert f"{bad}:3" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "index" / "chroma").exists()  # nothing was written


def test_empty_query_exits_2(tmp_path: Path) -> None:
    out = run_rag("search", "   ", index_dir=tmp_path / "index")
    assert out.returncode == 2 and "query is empty" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "index").exists()  # a bad query builds nothing, not even on first use


def test_search_honours_rag_retriever(bundled_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Words no abstract holds: BM25 finds nothing, dense search still ranks papers."""
    hybrid = run_rag("search", "zxqv wplm", index_dir=bundled_settings.index_dir)
    assert hybrid.returncode == 0 and hybrid.stdout.startswith("1. ")
    monkeypatch.setenv("RAG_RETRIEVER", "bm25")
    bm25 = run_rag("search", "zxqv wplm", index_dir=bundled_settings.index_dir)
    assert bm25.returncode == 0 and bm25.stdout.strip() == "no matching papers"


def test_search_and_ask_filter_by_year_author_and_source(tmp_path: Path) -> None:
    data = Path(__file__).parent / "data"
    files = [str(data / n) for n in ("zotero.bib", "endnote.ris", "better.json")]
    assert run_rag("ingest", "-q", *files, index_dir=tmp_path / "index").returncode == 0
    out = run_rag("search", "networks", "--years", "2021", "--author", "muller", index_dir=tmp_path / "index")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("1. The Gödel Machine") and "\n2. " not in out.stdout
    out = run_rag("search", "networks", "--source", "zotero.bib", "--json", index_dir=tmp_path / "index")
    titles = {h["title"] for h in json.loads(out.stdout)}
    assert titles == {
        "The Gödel Machine: Self-Referential Learners That Rewrite Their Own Code",
        "Sparse Capybara Networks",
    }
    assert (
        run_rag("search", "networks", "--years", "2030-", index_dir=tmp_path / "index").stdout == "no matching papers\n"
    )
    out = run_rag("ask", "What do sparse capybara networks keep?", "--author", "Nguyen", index_dir=tmp_path / "index")
    assert out.returncode == 0 and "Sparse Capybara Networks" in out.stdout.split("Sources:")[1]
    bad = run_rag("search", "networks", "--years", "last year", index_dir=tmp_path / "index")
    assert bad.returncode == 2 and "years must look like 2022, 2022-, -2021 or 2019-2021" in bad.stderr
