"""Filters (year range, author, source, arXiv category) in both retrievers, checked against brute force: a filtered
search ranks exactly the papers it admits, in the order the unfiltered search ranks them."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import rag
from rag.index.filters import PaperFilter, parse_years
from rag.index.search import MAX_K
from rag.index.store import LAYOUT_KEY, modifiable
from tests.fakes import HashEmbedder
from tests.helpers import make_settings

TOPICS = ["sparse lottery tickets", "scaling laws", "quantized training", "graph networks", "image retrieval"]
SURNAMES = ["Müller", "Smith", "van der Berg", "Nguyễn", "Okafor", "Ivanova"]
CATEGORIES = ["cs.LG", "stat.ML", "cs.CV", "math.OC", "hep-th"]


def _papers(n: int = 80) -> list[dict[str, object]]:
    rng = random.Random(7)
    rows = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        row: dict[str, object] = {
            "title": f"Paper {i}: a study of {topic} number {i}",
            "abstract": f"We study {topic} in setting {i}. Our {topic} results hold for {rng.choice(TOPICS)}.",
        }
        if i % 9:  # some papers have no year
            row["year"] = 2014 + i % 11
        if i % 4:
            row["authors"] = "; ".join(f"{a}, {chr(65 + j)}." for j, a in enumerate(rng.sample(SURNAMES, 2)))
        if i % 3:
            row["categories"] = " ".join(rng.sample(CATEGORIES, 2))
        rows.append(row)
    return rows


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> rag.Library:
    folder = tmp_path_factory.mktemp("filters")
    rows = _papers()
    files = [folder / "a.jsonl", folder / "b.jsonl"]
    for n, path in enumerate(files):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows[n::2]))
    lib = rag.Library(make_settings(folder / "index"), embedder=HashEmbedder())
    lib.ingest(files, include_bundled=False, progress=False)
    return lib


FILTERS = [
    PaperFilter(year_from=2020),
    PaperFilter(year_to=2016),
    PaperFilter(year_from=2017, year_to=2019),
    PaperFilter(author="Müller"),
    PaperFilter(author="nguyen"),  # accents folded
    PaperFilter(author="Piet van der Berg"),  # a surname of several words, by its last word
    PaperFilter(source="b.jsonl"),
    PaperFilter(category="CS.lg"),
    PaperFilter(category="hep-th", year_from=2018),
    PaperFilter(author="Smith", source="a.jsonl", year_to=2022),
    PaperFilter(author="Nobody"),
]


@pytest.mark.parametrize("retriever", ["dense", "bm25", "hybrid"])
@pytest.mark.parametrize("flt", FILTERS, ids=lambda f: f.describe())
def test_a_filtered_search_ranks_exactly_the_admitted_papers_in_unfiltered_order(
    library: rag.Library, flt: PaperFilter, retriever: str
) -> None:
    papers = {p.paper_id: p for p in library.papers()}
    admitted = {pid for pid, p in papers.items() if flt.admits(p)}
    assert len(admitted) <= MAX_K
    for query in ("sparse lottery tickets", "scaling laws of quantized graph networks"):
        filtered = [h.paper_id for h in library.search(query, k=MAX_K, retriever=retriever, where=flt)]
        everything = [h.paper_id for h in library.search(query, k=MAX_K, retriever=retriever)]
        assert set(filtered) <= admitted, "a paper the filter refuses was returned"
        if retriever in ("dense", "hybrid"):  # every admitted paper has a vector: all of them come back
            assert set(filtered) == admitted
        if retriever in ("dense", "bm25"):  # brute force: the unfiltered ranking without the refused papers
            reference = [pid for pid in everything if pid in admitted]
            assert filtered[: len(reference)] == reference
        # (Fused ranks are recomputed among the admitted papers, so a hybrid order may differ from the
        # unfiltered one with refused papers taken out: that is the fusion of the filtered rankings.)


@pytest.mark.parametrize("flt", FILTERS[:4], ids=lambda f: f.describe())
def test_chroma_where_and_the_exact_scan_rank_the_same(
    library: rag.Library, flt: PaperFilter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A filter admitting more than EXACT_SCAN_MAX chunks is searched through Chroma's `where` instead."""
    from rag.index import paper_index

    query = "sparse lottery tickets"
    scanned = [(h.paper_id, round(h.score, 4)) for h in library.search(query, k=MAX_K, retriever="dense", where=flt)]
    monkeypatch.setattr(paper_index, "EXACT_SCAN_MAX", 0)
    monkeypatch.setattr(library.index, "_admitted", {})
    opened = library.index.current()
    assert opened is not None and any(flt.admits(p) for p in library.papers())
    assert library.index.admitted(flt, opened, library.index.bm25(opened.digest)).vectors is None  # not scanned
    through_chroma = [
        (h.paper_id, round(h.score, 4)) for h in library.search(query, k=MAX_K, retriever="dense", where=flt)
    ]
    assert through_chroma == scanned


def test_the_filter_rule_on_papers() -> None:
    categories = "cs.LG stat.ML Computer Science - Machine Learning"
    meta: dict[str, str | int] = {"authors": "van der Berg, Piet; Müller, Anna", "year": 2021, "categories": categories}
    paper = rag.Paper("x", "T", "a", ("mine.bib",), meta)
    assert PaperFilter(author="MULLER", year_from=2021).admits(paper)
    assert PaperFilter(author="Berg", category="stat.ml", source="mine.bib").admits(paper)
    assert not PaperFilter(year_to=2020).admits(paper) and not PaperFilter(category="machine").admits(paper)
    assert not PaperFilter(year_from=2000).admits(rag.Paper("y", "T", "a"))  # no year: left out by a year bound
    assert PaperFilter(year_from=2022, author="Hinton").describe() == "from 2022 · author Hinton"
    assert PaperFilter.of({"author": " ", "source": ""}) is None  # empty form boxes filter nothing


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"year_from": "2022"}, "year_from must be a year such as 2022"),
        ({"year_from": 2023, "year_to": 2020}, "year_from (2023) is after year_to (2020); swap them"),
        ({"years": 2020}, "unknown filter field(s) years; use author, category, source, year_from, year_to"),
        ({"author": "  ,  "}, "names no surname"),
    ],
)
def test_a_bad_filter_says_what_to_fix_before_anything_runs(library: rag.Library, given: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        library.search("scaling laws", where=given)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        library.ask("What are scaling laws?", where=given)


def test_years_as_typed() -> None:
    assert [parse_years(t) for t in ("2022", "2022-", "-2021", "2019 – 2021")] == [
        (2022, 2022), (2022, None), (None, 2021), (2019, 2021)]  # fmt: skip
    for bad in ("", "22", "2019 2021", "last year"):
        with pytest.raises(ValueError, match="years must look like"):
            parse_years(bad)


def test_ask_answers_only_from_admitted_papers(library: rag.Library) -> None:
    flt = PaperFilter(year_from=2020, category="cs.LG")
    answer = library.ask("What do the studies of scaling laws find?", where=flt, k=10)
    assert answer.sources and all(flt.admits(p) for p in library.papers([h.paper_id for h in answer.sources]))


def test_new_metadata_moves_a_paper_between_filters_without_re_embedding(tmp_path: Path) -> None:
    lib = rag.Library(make_settings(tmp_path / "index"), embedder=HashEmbedder())
    path = tmp_path / "mine.jsonl"
    row = {"title": "Sparse lottery tickets revisited", "abstract": "We revisit sparse lottery tickets at scale."}
    path.write_text(json.dumps(row | {"year": 2019}) + "\n")
    lib.ingest([path], include_bundled=False, progress=False)
    assert lib.search("lottery tickets", where={"year_to": 2019}) and not lib.search(
        "lottery tickets", where={"year_from": 2023}
    )
    path.write_text(json.dumps(row | {"year": 2023, "authors": "Frankle, Jonathan"}) + "\n")
    report = lib.ingest([path], include_bundled=False, progress=False)
    assert report.added == 0 and report.updated_papers == 1  # the record and its chunks relabelled, not re-embedded
    for retriever in ("dense", "bm25"):
        assert lib.search("lottery tickets", retriever=retriever, where={"year_from": 2023, "author": "Frankle"})
        assert not lib.search("lottery tickets", retriever=retriever, where={"year_to": 2019})


def test_an_index_from_before_filters_gets_their_fields_when_opened(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "index")
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps({"title": "Old paper", "abstract": "Sparse lottery tickets.", "year": 2018}) + "\n")
    rag.Library(settings, embedder=HashEmbedder()).ingest([path], include_bundled=False, progress=False)
    first = rag.Library(settings, embedder=HashEmbedder()).index.open()
    assert first is not None
    chunks = first.chunks  # make it an index of layout 3: no filter fields on its chunks
    ids = chunks.get(include=[])["ids"]
    chunks.update(ids=ids, metadatas=[{"f_year": None, "f_sources": None}] * len(ids))
    chunks.modify(metadata={**modifiable(chunks.metadata), LAYOUT_KEY: 3})
    assert chunks.get(where={"f_year": 2018})["ids"] == []
    reopened = rag.Library(settings, embedder=HashEmbedder())
    assert [h.title for h in reopened.search("lottery", where={"year_from": 2018, "source": "mine.jsonl"})] == [
        "Old paper"
    ]
