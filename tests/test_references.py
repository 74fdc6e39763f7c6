"""Reference-manager exports in: realistic hand-written samples (tests/data) parse with no error, entries without
an abstract are skipped and counted, provenance lands under one vocabulary, bad files say where."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import rag
from rag.answer.sources import load_sources
from rag.ingest.errors import CorpusError
from rag.ingest.formats import Record, parse_file
from rag.types import Hit
from tests.fakes import HashEmbedder
from tests.helpers import make_settings

DATA = Path(__file__).parent / "data"


def test_a_zotero_bibtex_export_with_accents_braces_and_a_missing_abstract(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        goedel, capybara = parse_file(DATA / "zotero.bib")
    assert "1 entries without a title or an abstract skipped" in caplog.text
    assert goedel.title == "The Gödel Machine: Self-Referential Learners That Rewrite Their Own Code"
    assert "élégant proof search" in goedel.abstract and "{" not in goedel.abstract
    assert goedel.metadata == {
        "authors": "Müller, Anna; Smith, John; van der Berg, Piet",
        "authors_count": 3,
        "year": 2021,
        "venue": "Journal of Machine Learning Research",
        "arxiv_id": "2101.00001",
        "doi": "10.48550/arXiv.2101.00001",
        "url": "https://arxiv.org/abs/2101.00001",
        "categories": "Computer Science - Machine Learning",
        "cite_key": "goedel2021",
    }
    assert capybara.metadata["authors"] == "Nguyễn, Văn An" and "90% of their accuracy" in capybara.abstract


def test_ris_with_ab_and_n2_abstracts_and_csl_json() -> None:
    otter, heron = parse_file(DATA / "endnote.ris")
    assert (otter.metadata["year"], otter.metadata["doi"], otter.metadata["authors_count"]) == (
        2022,
        "10.1234/tmlr.2022.5",
        2,
    )
    assert heron.abstract.startswith("We analyse heron attention heads")  # from N2
    (kingfisher,) = parse_file(DATA / "better.json")
    assert kingfisher.metadata["authors"] == "Darwin, Charles; The Kingfisher Consortium"
    assert (kingfisher.metadata["year"], kingfisher.metadata["arxiv_id"]) == (2024, "2403.01234")


def test_arxiv_metadata_records_keep_only_what_the_index_needs() -> None:
    (record,) = parse_file(DATA / "arxiv-metadata.jsonl")
    assert record.title == "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    assert record.abstract.startswith("A fully differential calculation") and "\n" not in record.abstract
    assert record.metadata["year"] == 2007  # the first version's, not the last update's
    assert record.metadata["arxiv_id"] == "0704.0001" and record.metadata["categories"] == "hep-ph"
    assert "versions" not in record.metadata and "authors_parsed" not in record.metadata


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("broken.bib", "@article{a, title = {Unclosed\n", "broken.bib:1: not a BibTeX entry"),
        ("broken.ris", "TI  - no type line\nER  - \n", "broken.ris:1: a .ris file starts each entry with 'TY  - '"),
        ("broken.json", '[{"title": "T", "abstract": "A"},', "broken.json:1: invalid JSON"),
    ],
)
def test_a_malformed_export_names_file_and_line(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(CorpusError, match=message):
        parse_file(path)


def test_exports_are_ingested_with_their_provenance(tmp_path: Path) -> None:
    lib = rag.Library(make_settings(tmp_path / "index"), embedder=HashEmbedder())
    files = [DATA / n for n in ("zotero.bib", "endnote.ris", "better.json", "arxiv-metadata.jsonl")]
    report = lib.ingest(files, include_bundled=False, progress=False)
    assert report.new_papers == 6
    assert [note.split(": ", 1) for note in report.notes] == [  # each sample has one entry with no abstract
        [str(f), f"1 {'arXiv record(s)' if f.suffix == '.jsonl' else 'entries'} without a title or an abstract skipped"]
        for f in files
    ]
    goedel = next(p for p in lib.papers() if p.title.startswith("The Gödel Machine"))
    assert goedel.metadata["doi"] == "10.48550/arXiv.2101.00001" and goedel.sources == ("zotero.bib",)
    sources = load_sources(lib.index, [Hit(goedel.paper_id, goedel.title, goedel.abstract, 1.0)])
    cited = sources[0].citation(sources[0].sentences[0])
    assert cited.metadata["authors"] == "Müller, Anna; Smith, John; van der Berg, Piet"
    assert cited.sources == ("zotero.bib",) and cited.to_dict()["metadata"]["year"] == 2021


def test_bibtex_out_reads_back_as_the_same_references(tmp_path: Path) -> None:
    """What `to_bibtex` writes, our own .bib reader (and so Zotero's) reads back to the same papers."""
    papers = [*parse_file(DATA / "zotero.bib"), *parse_file(DATA / "endnote.ris"), *parse_file(DATA / "better.json")]
    written = tmp_path / "cited.bib"
    written.write_text(rag.to_bibtex([_paper(r, i) for i, r in enumerate(papers)]), encoding="utf-8")
    back = parse_file(written)
    assert [r.title for r in back] == [r.title for r in papers]
    for before, after in zip(papers, back, strict=True):
        assert " ".join(after.abstract.split()) == " ".join(before.abstract.split())
        for key in ("authors", "year", "doi", "arxiv_id"):
            assert after.metadata.get(key) == before.metadata.get(key), (key, before.title)
    keys = [after.metadata["cite_key"] for after in back]
    assert len(set(keys)) == len(keys) and keys[0] == "goedel2021"  # an entry's own key is kept


def test_bibtex_keys_and_entry_kinds() -> None:
    arxiv = rag.Paper(
        "a1",
        "Attention Is All You Need",
        "We propose & test 50% w_{min}.",
        (),
        {
            "authors": "Vaswani, Ashish; Shazeer, Noam",
            "year": 2017,
            "arxiv_id": "1706.03762",
            "categories": "cs.CL cs.LG",
            "doi": "10.48550/arXiv.1706.03762",
        },
    )
    bundled = rag.Paper("b2", "Über Größe", "x", ("001.txt",), {"date": "Feb 6, 2023"})
    text = rag.to_bibtex([arxiv, bundled, rag.Paper("b3", "Über Größe", "y", (), {"date": "Mar 1, 2023"}), arxiv])
    assert text.count("@") == 3  # a repeated paper is written once
    assert "@misc{vaswani2017attention," in text and "eprint = {1706.03762}" in text
    assert "primaryclass = {cs.CL}" in text and "doi = {10.48550/arXiv.1706.03762}" in text  # identifiers verbatim
    assert r"We propose \& test 50\% w\_\{min\}." in text
    assert "@misc{uber2023," in text and "@misc{uber2023a," in text and r"\"Uber Gr\"o{\ss}e" in text
    assert rag.to_bibtex([]) == ""


def _paper(record: Record, n: int) -> rag.Paper:
    return rag.Paper(f"p{n}", record.title, record.abstract, (), dict(record.metadata))


def test_the_library_tab_says_which_entries_were_skipped_naming_the_file_as_uploaded(tmp_path: Path) -> None:
    from rag.ui.library import add_files

    upload = tmp_path / "upload" / "my refs.bib"
    upload.parent.mkdir()
    upload.write_text("@article{a, title={Only a title}}\n@article{b, title={Another}, year={2020}}\n")
    messages = list(add_files([str(upload)], make_settings(tmp_path / "index"), max_mb=5))
    assert messages[-1].startswith("✓ 0 new, 0 updated, 0 unchanged")
    assert "⚠ my\\_refs.bib: 2 entries without a title or an abstract skipped" in messages[-1]  # Markdown-escaped
    assert "rag-upload-" not in messages[-1]  # the private staging folder is not shown
