"""The corpus parsers: every listing layout, JSONL, CSV, de-duplication and every kind of bad input."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pytest

from rag.ingest.corpus import bundled_paths, load_corpus, paper_id_for
from rag.ingest.formats import CorpusError, parse_file
from rag.ingest.titles import split_title

CARD_FILE = "000_898e5624ff3aa9ff.txt"
# Written down by hand from the raw file, so the parser is checked against a person's reading.
CARD_TITLES = [
    "A Toy Model of Universality: Reverse Engineering How Networks Learn Group Operations",
    "The Universality Lens: Why Even Highly Over-Parametrized Models Learn Well",
    "On the Universality of Linear Recurrences Followed by Nonlinear Projections",
    "Deterministic equivalent and error universality of deep random features learning",
    "Are Gaussian data all you need? Extents and limits of universality in high-dimensional generalized "
    "linear estimation",
    "Universal Properties of Mythological Networks",
    "Minimal Width for Universal Property of Deep RNN",
    "Universal Online Learning with Unbounded Losses: Memory Is All You Need",
    "Universal Neurons in GPT2 Language Models",
    "On the Existence of Universal Lottery Tickets",
    "Exact Learning of Permutations for Nonzero Binary Inputs with Logarithmic Training Size and Quadratic "
    "Ensemble Complexity",
    "Learning Universal Predictors",
    "Minimum Width of Leaky-ReLU Neural Networks for Uniform Universal Approximation",
    "Beyond the Universal Law of Robustness: Sharper Laws for Random Features and Neural Tangent Kernels",
    "Emergent Abilities of Large Language Models",
    "A Neural Scaling Law from Lottery Ticket Ensembling",
    "Random Rank: The One and Only Strategyproof and Proportionally Fair Randomized Facility Location Mechanism",
    "The information-theoretic foundation of thermodynamic work extraction",
]
# The three card titles that no other file states: only the general method can recover them.
CARD_ONLY = set(CARD_TITLES[i] for i in (2, 16, 17))


@pytest.fixture(scope="module")
def corpus() -> list:
    return load_corpus()


def test_bundled_collection_has_248_unique_papers(corpus: list) -> None:
    assert len(corpus) == 248
    assert len({p.paper_id for p in corpus}) == 248
    assert all(p.title and len(p.abstract) > 100 for p in corpus)


def test_card_titles_are_recovered_exactly(corpus: list) -> None:
    from_cards = [p for p in corpus if CARD_FILE in p.sources]
    assert sorted(p.title for p in from_cards) == sorted(CARD_TITLES)
    only = {p.title for p in from_cards if p.sources == (CARD_FILE,)}
    assert only == CARD_ONLY


def test_card_titles_without_help_from_other_files() -> None:
    """The card file alone (no titles known from elsewhere) still yields every title."""
    papers = load_corpus([p for p in bundled_paths() if p.name == CARD_FILE])
    assert sorted(p.title for p in papers) == sorted(CARD_TITLES)


def test_card_metadata_and_sources_are_kept(corpus: list) -> None:
    by_title = {p.title: p for p in corpus}
    predictors = by_title["Learning Universal Predictors"]
    assert predictors.metadata == {"authors_count": 11, "date": "Jan 26, 2024", "upvotes": 22, "comments": 1}
    assert set(predictors.sources) == {CARD_FILE, "001_552963d9ea35f19c.txt", "002_00d4a3d3fd5f8d9c.txt"}
    assert (
        by_title["The Universality Lens: Why Even Highly Over-Parametrized Models Learn Well"].metadata["date"]
        == "Jun 9"
    )
    assert (
        "upvotes"
        not in by_title["Deterministic equivalent and error universality of deep random features learning"].metadata
    )


def test_page_chrome_is_not_a_paper(corpus: list) -> None:
    titles = {p.title for p in corpus}
    assert "Minimum width for universal approximation using ReLU networks on compact domain" in titles
    assert not any(t.startswith(("Subscribe", "Get trending", "Daily Papers")) for t in titles)


def test_title_split_heuristic_on_every_known_title(corpus: list) -> None:
    """With no known titles to lean on, the border is found for at least 95% of the collection."""
    right = sum(split_title(f"{p.title} {p.abstract}")[0] == p.title for p in corpus)
    assert right / len(corpus) >= 0.95


def test_duplicates_merge_by_normalised_title(tmp_path: Path) -> None:
    a = tmp_path / "a.jsonl"
    a.write_text(json.dumps({"title": "Deep Nets: A Study", "abstract": "Short abstract about nets." * 3}) + "\n")
    b = tmp_path / "b.csv"
    b.write_text(
        'title,abstract,venue\n"deep nets - a study","A longer abstract about deep nets and more.  x'
        + "y" * 80
        + '",ICML\n'
    )
    papers = load_corpus([a, b])
    assert len(papers) == 1
    assert papers[0].sources == ("a.jsonl", "b.csv")
    assert papers[0].metadata == {"venue": "ICML"}
    assert papers[0].paper_id == paper_id_for("Deep Nets: A Study")


def test_jsonl_and_csv_keep_other_fields_as_metadata(tmp_path: Path) -> None:
    f = tmp_path / "mine.jsonl"
    rows = [
        {
            "title": "Paper One",
            "abstract": "An abstract that is long enough to be an abstract.",
            "year": 2024,
            "tags": ["a", "b"],
        },
        {"title": "Paper Two", "abstract": "Another abstract that is long enough to count.", "url": "x"},
    ]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    papers = load_corpus([f])
    assert [p.title for p in papers] == ["Paper One", "Paper Two"]
    assert papers[0].metadata == {"year": 2024, "tags": '["a", "b"]'}


def test_blank_line_layout(tmp_path: Path) -> None:
    f = tmp_path / "listing.txt"
    f.write_text(
        "new\n\nSubscribe\n\nAug 19\n\nA Title Here\n\n"
        + "Abstract text. " * 10
        + "\n\nSecond Title\n\n"
        + "More text. " * 10
        + "\n"
    )
    assert [r.title for r in parse_file(f)] == ["A Title Here", "Second Title"]


@pytest.mark.parametrize(
    ("name", "content", "line", "words"),
    [
        (
            "bad.jsonl",
            '{"title": "T", "abstract": "long enough abstract here"}\n{"title": "no abstract"}\n',
            2,
            "abstract",
        ),
        ("bad2.jsonl", '{"title": "T", "abstract": "ok"}\n{not json\n', 2, "invalid JSON"),
        ("bad.csv", "title,summary\nT,S\n", 1, "'abstract'"),
        ("bad2.csv", 'title,abstract\nT,"an abstract long enough"\n,"missing title here"\n', 3, "title"),
        (
            "cards.txt",
            "- Title One We study things. 3 authors · Feb 6, 2023\n"
            "- Title Two We study more things. 2 authors · Mar 1, 2022\ngarbage line in the middle\n",
            3,
            "listing card",
        ),
        (
            "pairs.txt",
            "A Title\n" + "An abstract that is long enough to be one. " * 3 + "\nOrphan Title\n",
            3,
            "no abstract",
        ),
        ("shifted.txt", "A Title\n" + "x" * 500 + "\n" + "y" * 500 + "\n", 3, "expected a title"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path: Path, name: str, content: str, line: int, words: str) -> None:
    f = tmp_path / name
    f.write_text(content)
    with pytest.raises(CorpusError) as err:
        load_corpus([f])
    assert err.value.line == line
    assert f"{f}:{line}" in str(err.value)
    assert words in str(err.value)


def test_non_utf8_file_names_the_line(tmp_path: Path) -> None:
    f = tmp_path / "latin1.txt"
    f.write_bytes(b"A Title\n" + "Caf\xe9 abstract that is long enough to count as one.".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"latin1.txt:2: not valid UTF-8"):
        load_corpus([f])


def test_empty_file_warns_and_yields_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    f = tmp_path / "empty.jsonl"
    f.write_text("  \n")
    with caplog.at_level(logging.WARNING):
        assert load_corpus([f]) == []
    assert "empty file" in caplog.text and "empty.jsonl" in caplog.text
    header_only = tmp_path / "header.csv"
    header_only.write_text("title,abstract\n")
    with caplog.at_level(logging.WARNING):
        assert load_corpus([header_only]) == []
    assert "header.csv: a header and no rows" in caplog.text


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no such file"):
        load_corpus([tmp_path / "nope.csv"])


def test_control_characters_are_stripped(tmp_path: Path) -> None:
    f = tmp_path / "c.jsonl"
    f.write_text(
        json.dumps({"title": "Bell\u0007 Title", "abstract": "Text with \u001b[31m escape codes inside it, long."})
        + "\n"
    )
    (paper,) = load_corpus([f])
    assert "\u0007" not in paper.title and "\u001b" not in paper.abstract


@pytest.mark.parametrize(
    "row",
    [
        '{"title": "Bad \\ud800 escape", "abstract": "An abstract long enough to be taken as one."}',
        '{"title": "T", "abstract": "An abstract long enough to be taken as one.", "note": "x\\udfff"}',
    ],
)
def test_lone_surrogate_escapes_in_json_are_a_path_line_error(tmp_path: Path, row: str) -> None:
    f = tmp_path / "s.jsonl"
    f.write_text('{"title": "Fine", "abstract": "An abstract long enough to be taken as one."}\n' + row + "\n")
    with pytest.raises(CorpusError, match=r"s\.jsonl:2: holds an invalid Unicode escape"):
        load_corpus([f])


def test_a_large_jsonl_file_is_streamed_not_held(tmp_path: Path) -> None:
    """Checking and reading a JSON Lines file keeps a count per paper, not its records (a million-record file)."""
    import tracemalloc

    from rag.ingest.corpus import Corpus

    big = tmp_path / "arxiv.jsonl"
    with big.open("w") as f:
        for i in range(6000):
            f.write(json.dumps({"title": f"Paper {i} on sparse networks", "abstract": f"Abstract {i}. " * 60}) + "\n")
    f_mb = big.stat().st_size / 1e6
    tracemalloc.start()
    corpus = Corpus([big])
    checked = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.reset_peak()
    count = sum(1 for _ in corpus.papers())
    read = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    assert count == len(corpus) == 6000
    assert f_mb > 5 and checked < f_mb / 5 and read < f_mb / 5, (f_mb, checked, read)


def test_a_large_csv_is_streamed_too_with_line_breaks_inside_quotes_and_lines_named(tmp_path: Path) -> None:
    import tracemalloc

    from rag.ingest.corpus import Corpus

    big = tmp_path / "export.csv"
    with big.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["title", "abstract", "year"])
        for i in range(6000):
            writer.writerow([f"Paper {i} on sparse networks", f"Abstract {i}.\nSecond line. " + "Words. " * 150, 2020])
    f_mb = big.stat().st_size / 1e6
    tracemalloc.start()
    corpus = Corpus([big])
    checked = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.reset_peak()
    papers, count = [], 0
    for paper in corpus.papers():
        count += 1
        papers += [paper] if count <= 3 else []
    read = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    assert count == len(corpus) == 6000 and f_mb > 5 and checked < f_mb / 5 and read < f_mb / 5, (checked, read)
    assert papers[1].abstract.startswith("Abstract 1. Second line.") and papers[1].metadata["year"] == "2020"
    bad = tmp_path / "bad.csv"
    bad.write_text('\n\ntitle,abstract\n"A title","An abstract long enough"\n,"a row without its title"\n')
    with pytest.raises(CorpusError, match=r"bad.csv:5"):  # the blank lines before the header are counted
        parse_file(bad)
    mac = tmp_path / "mac.csv"  # bare CR line endings, one inside a quoted field
    mac.write_bytes(b'title,abstract\rT1,"An abstract long enough,\rover two lines"\rT2,"Another abstract here"\r')
    assert [(r.title, r.line, r.abstract) for r in parse_file(mac)] == [
        ("T1", 3, "An abstract long enough, over two lines"),
        ("T2", 4, "Another abstract here"),
    ]
    (tmp_path / "empty.csv").write_text("\n\n")
    assert parse_file(tmp_path / "empty.csv") == []
    open_quote = tmp_path / "quote.csv"
    open_quote.write_text('title,abstract,"note\nT1,"An abstract long enough here",x\n')
    with pytest.raises(CorpusError, match=r"quote.csv:1: the header row has a quote that is never closed"):
        parse_file(open_quote)


def test_duplicates_are_merged_while_streaming_and_a_changed_file_is_an_error(tmp_path: Path) -> None:
    from rag.ingest.corpus import Corpus

    rows = [{"title": f"Paper {i}", "abstract": f"About {i}, " + "words " * 10 * (i % 3 + 1)} for i in range(5)]
    rows.append({"title": "paper 1", "abstract": "The longest abstract of paper one, " + "words " * 50, "year": 2020})
    a = tmp_path / "a.jsonl"
    a.write_text("".join(json.dumps(r) + "\n" for r in rows))
    corpus = Corpus([a])
    papers = {p.title: p for p in corpus.papers()}
    assert len(corpus) == len(papers) == 5
    assert papers["paper 1"].abstract.startswith("The longest") and papers["paper 1"].metadata == {"year": 2020}
    a.write_text("".join(json.dumps(r) + "\n" for r in rows[:-1]))  # changed between the check and the reading
    with pytest.raises(CorpusError, match="changed while it was being ingested"):
        list(corpus.papers())


def test_a_file_named_twice_is_read_once(tmp_path: Path) -> None:
    from rag.ingest.corpus import Corpus

    f = tmp_path / "a.csv"
    f.write_text("title,abstract\n" + "".join(f'"Paper {i}","About paper {i}, at some length."\n' for i in range(4)))
    papers = list(Corpus([f, tmp_path / "." / "a.csv"]).papers())
    assert sorted(p.title for p in papers) == [f"Paper {i}" for i in range(4)]


def test_a_record_added_between_the_two_readings_is_an_error(tmp_path: Path) -> None:
    from rag.ingest.corpus import Corpus

    f = tmp_path / "a.jsonl"
    line = json.dumps({"title": "Only once", "abstract": "Stated once when the file was checked."}) + "\n"
    f.write_text(line)
    corpus = Corpus([f])
    f.write_text(line + line)  # the same paper twice: same ids, but not the file that was checked
    with pytest.raises(CorpusError, match="changed while it was being ingested"):
        list(corpus.papers())


def test_jsonl_lines_may_end_in_a_bare_cr_and_warnings_are_given_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from rag.ingest.corpus import Corpus

    f = tmp_path / "mac.jsonl"
    rows = [{"title": f"Paper {i}", "abstract": f"About paper {i}, at some length."} for i in range(3)]
    f.write_bytes("\r".join(json.dumps(r) for r in rows).encode() + b"\r")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with caplog.at_level(logging.WARNING):
        papers = list(Corpus([f, empty]).papers())
    assert [p.title for p in papers] == ["Paper 0", "Paper 1", "Paper 2"]
    assert caplog.text.count("empty file") == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"\r".join([json.dumps(rows[0]).encode(), b"{not json"]))
    with pytest.raises(CorpusError, match=r"bad\.jsonl:2"):
        Corpus([bad])


def test_each_ingest_keeps_its_own_notes_when_two_read_at_once(tmp_path: Path) -> None:
    """The chat serves several users: one upload's skipped entries are not reported to another."""
    import threading

    from rag.ingest.corpus import Corpus

    files = []
    for n in range(2):
        f = tmp_path / f"refs{n}.bib"
        f.write_text("".join(f"@article{{k{n}{i}, title={{Title {n} {i}}}}}\n" for i in range(300)))
        files.append(f)
    notes: dict[int, list[str]] = {}
    barrier = threading.Barrier(2)

    def read(n: int) -> None:
        barrier.wait()
        for _ in range(5):
            notes.setdefault(n, []).extend(Corpus([files[n]]).notes)

    threads = [threading.Thread(target=read, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n in range(2):
        assert notes[n] == [f"{files[n]}: 300 entries without a title or an abstract skipped"] * 5
