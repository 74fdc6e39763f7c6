"""Incremental, idempotent and crash-safe ingest, against a real embedded Chroma."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rag
from rag.config import Settings
from rag.index.paper_index import PaperIndex
from rag.index.store import DIGEST_KEY, ids_digest, iter_records
from rag.ingest.chunking import chunk_papers
from rag.ingest.corpus import load_corpus
from rag.library import forget_library
from tests.helpers import opened, write_jsonl

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def six_papers() -> list[tuple[str, str]]:
    return [(p.title, p.abstract) for p in load_corpus()[:6]]


def index_ids(settings: Settings) -> list[str]:
    return [cid for cid, _, _ in iter_records(opened(settings).chunks, include_documents=False)]


def test_ingest_is_idempotent(fresh_settings: Settings, tmp_path: Path, six_papers: list) -> None:
    f = write_jsonl(tmp_path / "p.jsonl", six_papers)
    first = rag.ingest([f], settings=fresh_settings, progress=False)
    assert first.papers == 6 and first.added == first.chunks > 0
    again = rag.ingest([f], settings=fresh_settings, progress=False)
    assert (again.added, again.removed, again.unchanged_papers) == (0, 0, 6)
    assert again.chunks == first.chunks
    ids = index_ids(fresh_settings)
    assert len(ids) == len(set(ids)) == first.chunks


def test_changed_paper_is_re_embedded_and_old_chunks_removed(
    fresh_settings: Settings, tmp_path: Path, six_papers: list
) -> None:
    f = write_jsonl(tmp_path / "p.jsonl", six_papers)
    rag.ingest([f], settings=fresh_settings, progress=False)
    changed = list(six_papers)
    changed[0] = (changed[0][0], "A completely rewritten abstract about quantum gravity and string theory models.")
    write_jsonl(f, changed)
    report = rag.ingest([f], settings=fresh_settings, progress=False)
    assert report.added == 1 and report.removed >= 1 and report.unchanged_papers == 5
    hits = rag.search("quantum gravity string theory", k=1, settings=fresh_settings)
    assert hits[0].title == changed[0][0] and "quantum gravity" in hits[0].text


def test_sync_removes_papers_missing_from_inputs(fresh_settings: Settings, tmp_path: Path, six_papers: list) -> None:
    rag.ingest([write_jsonl(tmp_path / "all.jsonl", six_papers)], settings=fresh_settings, progress=False)
    fewer = write_jsonl(tmp_path / "fewer.jsonl", six_papers[:4])
    kept = rag.ingest([fewer], settings=fresh_settings, progress=False)
    assert kept.removed == 0  # without --sync nothing is removed
    synced = rag.ingest([fewer], sync=True, settings=fresh_settings, progress=False)
    assert synced.removed > 0
    titles = {m["title"] for _, _, m in iter_records(opened(fresh_settings).chunks)}
    assert titles == {t for t, _ in six_papers[:4]}


def test_bad_input_leaves_the_index_untouched(fresh_settings: Settings, tmp_path: Path, six_papers: list) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", six_papers[:3])
    rag.ingest([good], settings=fresh_settings, progress=False)
    before = sorted(index_ids(fresh_settings))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"title": "New", "abstract": "A new abstract that is long enough."}) + "\n{broken\n")
    with pytest.raises(rag.CorpusError, match=r"bad.jsonl:2"):
        rag.ingest(
            [good, write_jsonl(tmp_path / "more.jsonl", six_papers[3:]), bad], settings=fresh_settings, progress=False
        )
    assert sorted(index_ids(fresh_settings)) == before


def test_other_embedding_model_is_a_clear_error(fresh_settings: Settings, tmp_path: Path, six_papers: list) -> None:
    f = write_jsonl(tmp_path / "p.jsonl", six_papers[:2])
    rag.ingest([f], settings=fresh_settings, progress=False)
    col = PaperIndex(fresh_settings).client.get_collection(fresh_settings.collection)
    col.modify(metadata={"embedding_model": "text-embedding-3-small", DIGEST_KEY: "x"})
    forget_library(fresh_settings)  # a process that opens the index afresh
    with pytest.raises(rag.IndexModelMismatch, match=r"text-embedding-3-small.*rag ingest --rebuild"):
        rag.ingest([f], settings=fresh_settings, progress=False)
    rebuilt = rag.ingest([f], rebuild=True, settings=fresh_settings, progress=False)
    assert rebuilt.added == rebuilt.chunks > 0
    assert rag.search("universality", k=1, settings=fresh_settings)


def test_a_large_ingest_writes_bm25_in_segments_as_it_goes(
    fresh_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks become BM25 segments of SEGMENT_ROWS during the ingest; the index matches the chunks Chroma holds."""
    from rag.index import bm25

    monkeypatch.setattr(bm25, "SEGMENT_ROWS", 40)
    papers = [(p.title, p.abstract) for p in load_corpus()[:60]]
    first = rag.ingest([write_jsonl(tmp_path / "a.jsonl", papers[:45])], settings=fresh_settings, progress=False)
    more = rag.ingest([write_jsonl(tmp_path / "b.jsonl", papers[45:])], settings=fresh_settings, progress=False)
    lex = PaperIndex(fresh_settings).bm25()
    sizes = [s.size for s in lex.segments]
    assert sizes[:-1] == [40] * (first.added // 40) + ([first.added % 40] if first.added % 40 else [])
    assert sum(sizes) == first.added + more.added and len(sizes) >= 3
    assert lex.digest == ids_digest(index_ids(fresh_settings)) and sorted(lex.chunk_ids) == sorted(
        index_ids(fresh_settings)
    )
    title, abstract = papers[50]
    assert rag.search(" ".join(abstract.split()[:12]), k=1, settings=fresh_settings)[0].title == title


def test_a_rebuild_writes_bm25_in_segments_too(
    fresh_settings: Settings, tmp_path: Path, six_papers: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--rebuild` drops the index; its BM25 starts empty, not from the old folder (which would mean a full,
    in-memory rebuild from Chroma at the end)."""
    f = write_jsonl(tmp_path / "p.jsonl", six_papers)
    rag.ingest([f], settings=fresh_settings, progress=False)

    def no_rebuild(self: PaperIndex) -> None:
        raise AssertionError("BM25 rebuilt from Chroma")

    monkeypatch.setattr(PaperIndex, "rebuild_bm25", no_rebuild)
    report = rag.ingest([f], rebuild=True, settings=fresh_settings, progress=False)
    assert report.added == report.chunks > 0
    lex = PaperIndex(fresh_settings).bm25()
    assert lex.digest == ids_digest(index_ids(fresh_settings)) and len(lex.chunk_ids) == report.chunks


def test_bm25_is_repaired_when_out_of_sync(fresh_settings: Settings, tmp_path: Path, six_papers: list) -> None:
    rag.ingest([write_jsonl(tmp_path / "p.jsonl", six_papers)], settings=fresh_settings, progress=False)
    folder = PaperIndex(fresh_settings).bm25_folder
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "digest": "stale"}))
    lex = PaperIndex(fresh_settings).bm25()
    assert lex.digest == ids_digest(index_ids(fresh_settings))
    assert len(lex.chunk_ids) == len(index_ids(fresh_settings))


@pytest.mark.slow
def test_ingest_killed_midway_then_rerun_gives_the_exact_index(tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    papers = sorted(load_corpus(), key=lambda p: not p.title.startswith("Minimum Width of Leaky"))[:90]
    corpus = write_jsonl(tmp_path / "corpus.jsonl", [(p.title, p.abstract) for p in papers])
    env = {**os.environ, "RAG_INDEX_DIR": str(index_dir), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "ingest", str(corpus)],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        seen += os.read(proc.stderr.fileno(), 4096)
        done = [(int(n), int(total)) for n, total in re.findall(rb"\| *(\d+)/(\d+) \[", seen)]
        if done and 0 < done[-1][0] < done[-1][1]:
            break
        assert proc.poll() is None, f"ingest ended before it could be killed: {seen[-500:]!r}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    settings = Settings(index_dir=index_dir, _env_file=None)  # type: ignore[call-arg]
    partial = index_ids(settings)
    expected = {c.chunk_id for c in chunk_papers(load_corpus([corpus]))}
    assert 0 < len(partial) < len(expected)

    report = rag.ingest([corpus], settings=settings, progress=False)
    assert report.added == len(expected) - len(partial)
    ids = index_ids(settings)
    assert len(ids) == len(set(ids)) and set(ids) == expected
    assert PaperIndex(settings).bm25().digest == ids_digest(expected)
    assert len(rag.indexed_papers(settings=settings)) == 90
    assert rag.search("Minimum width of leaky-ReLU networks", k=1, settings=settings)[0].title.startswith(
        "Minimum Width of Leaky"
    )


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def test_each_abstract_is_stored_once_so_size_grows_linearly(fresh_settings: Settings, tmp_path: Path) -> None:
    """A long abstract used to be copied into every chunk's metadata: size grew with its square."""
    words = "neural scaling laws predict the loss of language models from compute data and parameters".split()
    abstract = " ".join(words[i % len(words)] + ("." if i % 15 == 14 else "") for i in range(6000))  # ~40k chars
    settings = fresh_settings.with_overrides(max_abstract_chars=100_000)
    f = write_jsonl(tmp_path / "long.jsonl", [("A Very Long Abstract About Scaling", abstract)])
    report = rag.ingest([f], settings=settings, progress=False)
    assert report.chunks > 20
    handle = opened(settings)
    metas = [m for _, _, m in iter_records(handle.chunks, include_documents=False)]
    assert all("abstract" not in m for m in metas)
    chunk_meta_chars = sum(len(str(v)) for m in metas for k, v in m.items() if k != "sent_vecs")
    assert chunk_meta_chars < len(abstract)  # spans and ids only: no copies of the text
    record = handle.papers.get(include=["documents"])
    assert record["documents"] == [abstract]
    paper = rag.indexed_papers(settings=settings)[0]
    assert paper.abstract == abstract


def test_abstract_over_the_limit_is_a_path_line_error(
    fresh_settings: Settings, tmp_path: Path, six_papers: list
) -> None:
    f = write_jsonl(tmp_path / "p.jsonl", [*six_papers[:2], ("Huge", "word " * 5000)])
    settings = fresh_settings.with_overrides(max_abstract_chars=10_000)
    with pytest.raises(rag.CorpusError, match=r"p\.jsonl:3: the abstract is 24,999 characters.*RAG_MAX_ABSTRACT_CHARS"):
        rag.ingest([f], settings=settings, progress=False)
    assert not rag.index_exists(settings)


@pytest.mark.parametrize(
    ("field", "words"),
    [
        ("chroma:document", "reserved by the index"),
        ("", "empty name"),
        ("#embedding", "reserved by the index"),
    ],
)
def test_bad_metadata_field_stops_before_anything_is_written(
    fresh_settings: Settings, tmp_path: Path, six_papers: list, field: str, words: str
) -> None:
    rag.ingest([write_jsonl(tmp_path / "first.jsonl", six_papers[:2])], settings=fresh_settings, progress=False)
    before = sorted(index_ids(fresh_settings))
    rows = [{"title": t, "abstract": a} for t, a in six_papers[2:]] + [
        {
            "title": "A Paper With A Hostile Field",
            "abstract": "An abstract long enough to be a real one, truly.",
            field: "x",
        }
    ]
    f = tmp_path / "bad.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(rag.CorpusError, match=rf"bad\.jsonl:5: .*{words}"):
        rag.ingest([f], settings=fresh_settings, progress=False)
    assert sorted(index_ids(fresh_settings)) == before
    assert len(rag.indexed_papers(settings=fresh_settings)) == 2


def test_oversized_metadata_values_are_refused(tmp_path: Path) -> None:
    f = tmp_path / "m.jsonl"
    f.write_text(
        json.dumps({"title": "T", "abstract": "An abstract long enough to count.", "notes": "x" * 3000}) + "\n"
    )
    with pytest.raises(rag.CorpusError, match=r"m\.jsonl:1: field 'notes' is 3,000 characters"):
        load_corpus([f])
    f.write_text(json.dumps({"title": "T", "abstract": "An abstract long enough to count.", "n": 2**70}) + "\n")
    with pytest.raises(rag.CorpusError, match=r"m\.jsonl:1: field 'n': the number .* too large"):
        load_corpus([f])


def test_changed_metadata_rewrites_the_record_without_re_embedding(
    fresh_settings: Settings, tmp_path: Path, six_papers: list
) -> None:
    f = tmp_path / "p.jsonl"
    f.write_text("".join(json.dumps({"title": t, "abstract": a, "upvotes": 1}) + "\n" for t, a in six_papers[:3]))
    rag.ingest([f], settings=fresh_settings, progress=False)
    f.write_text("".join(json.dumps({"title": t, "abstract": a, "upvotes": 7}) + "\n" for t, a in six_papers[:3]))
    report = rag.ingest([f], settings=fresh_settings, progress=False)
    assert (report.added, report.removed, report.unchanged_papers) == (0, 0, 0)
    assert (report.new_papers, report.updated_papers) == (0, 3)
    assert {p.metadata.get("upvotes") for p in rag.indexed_papers(settings=fresh_settings)} == {7}
    write_jsonl(f, six_papers[:3])  # the field is gone from the file: it goes from the records too
    rag.ingest([f], settings=fresh_settings, progress=False)
    assert all("upvotes" not in p.metadata for p in rag.indexed_papers(settings=fresh_settings))


def test_an_index_of_the_first_layout_is_upgraded_without_re_embedding(
    fresh_settings: Settings, tmp_path: Path, six_papers: list
) -> None:
    """Indexes built before abstracts moved to per-paper records still open, and answer with full abstracts."""
    f = write_jsonl(tmp_path / "p.jsonl", six_papers[:3])
    rag.ingest([f], settings=fresh_settings, progress=False)
    client = PaperIndex(fresh_settings).client
    chunks = client.get_collection(fresh_settings.collection)
    got = chunks.get(include=["metadatas"])
    by_title = dict(six_papers)
    old = [{**m, "abstract": by_title[str(m["title"])], "sources": "p.jsonl"} for m in got["metadatas"] or []]
    chunks.update(ids=got["ids"], metadatas=old)  # type: ignore[arg-type]
    meta = {k: v for k, v in (chunks.metadata or {}).items() if k not in ("layout", "hnsw:space")}
    chunks.modify(metadata=meta)
    client.delete_collection(fresh_settings.collection + ".abstracts")
    forget_library(fresh_settings)  # a process that opens the index afresh
    papers = rag.indexed_papers(settings=fresh_settings)
    assert sorted(p.abstract for p in papers) == sorted(a for _, a in six_papers[:3])
    again = rag.ingest([f], settings=fresh_settings, progress=False)
    assert (again.added, again.removed) == (0, 0)
    chunk_keys = {k for _, _, m in iter_records(opened(fresh_settings).chunks, include_documents=False) for k in m}
    assert "abstract" not in chunk_keys and "sources" not in chunk_keys  # moved, not copied


def run_cli_ingest(settings: Settings, *args: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "rag.cli", "ingest", "-q", *args],
        cwd=ROOT,
        env={**os.environ, "RAG_INDEX_DIR": str(settings.index_dir)},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr


def test_a_running_process_sees_an_ingest_made_by_another(
    fresh_settings: Settings, tmp_path: Path, six_papers: list
) -> None:
    """Embedded Chroma caches its vectors in memory; dense search used to miss papers another process added."""
    rag.ingest([write_jsonl(tmp_path / "a.jsonl", six_papers)], settings=fresh_settings, progress=False)
    query = "octopus skin camouflage learned from reef images"
    assert "Octopus" not in rag.search(query, k=1, retriever="dense", settings=fresh_settings)[0].title
    new = write_jsonl(
        tmp_path / "b.jsonl",
        [
            (
                "Octopus Camouflage Networks",
                "We study how octopus skin changes colour for camouflage, with networks trained on reef images.",
            )
        ],
    )
    run_cli_ingest(fresh_settings, str(new))
    for retriever in ("dense", "bm25", "hybrid"):
        assert (
            rag.search(query, k=1, retriever=retriever, settings=fresh_settings)[0].title
            == "Octopus Camouflage Networks"
        )


def test_a_running_library_survives_a_rebuild_by_another_process(
    fresh_settings: Settings, tmp_path: Path, six_papers: list
) -> None:
    lib = rag.Library(fresh_settings)
    f = write_jsonl(tmp_path / "p.jsonl", six_papers[:4])
    lib.ingest([f], progress=False)
    assert lib.search(six_papers[0][0], k=1)[0].title == six_papers[0][0]
    run_cli_ingest(fresh_settings, "--rebuild", str(f))  # same papers: same digest, new collections
    assert lib.search(six_papers[1][0], k=1)[0].title == six_papers[1][0]
    assert len(lib.papers()) == 4
    lib.close()


def test_an_ingest_after_another_process_wrote_stamps_the_true_digest(
    fresh_settings: Settings, tmp_path: Path, six_papers: list
) -> None:
    lib = rag.Library(fresh_settings)
    mine = write_jsonl(tmp_path / "a.jsonl", six_papers[:2])
    lib.ingest([mine], progress=False)
    lib.search("anything at all", k=1)  # this process has the index open
    run_cli_ingest(fresh_settings, str(write_jsonl(tmp_path / "b.jsonl", six_papers[2:4])))
    lib.ingest([mine], sync=True, progress=False)  # back to what this process saw: only the digest on disk tells
    fresh = PaperIndex(fresh_settings)
    chunks = opened(fresh_settings).chunks
    assert DIGEST_KEY in (chunks.metadata or {})
    assert chunks.metadata[DIGEST_KEY] == ids_digest(index_ids(fresh_settings))  # type: ignore[index]
    assert fresh.bm25().digest == ids_digest(index_ids(fresh_settings))
    assert len(lib.papers()) == 2
    lib.close()
