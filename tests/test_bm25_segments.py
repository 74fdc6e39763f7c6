"""BM25 in segments: an ingest adds a segment and marks removed rows, and ranks like a full rebuild."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import numpy as np
import pytest

import rag
from rag.config import Settings
from rag.index import bm25
from rag.index.paper_index import PaperIndex
from rag.index.store import ids_digest, iter_records, updated_digest
from rag.ingest.corpus import load_corpus
from tests.helpers import opened, write_jsonl

VOCAB = "lottery ticket sparse network scaling law language model graph molecule robust adversarial".split()


def corpus(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    return [f"c{i}" for i in range(n)], [" ".join(rng.choices(VOCAB, k=10)) for _ in range(n)]


def test_a_segment_and_deletions_rank_like_a_full_rebuild(tmp_path: Path) -> None:
    ids, texts = corpus(400)
    base = bm25.build(ids, texts, "before", tmp_path / "a")
    new_ids, new_texts = ["n1", "n2"], ["sparse lottery ticket molecule", "graph graph robust"]  # short ones
    removed = ids[:5]
    updated = base.updated(new_ids, new_texts, removed, "after", lambda _: [])
    assert updated is not None and len(updated.segments) == 2 and updated.deleted == set(removed)
    keep = [(i, t) for i, t in zip(ids, texts, strict=True) if i not in removed]
    full = bm25.build([i for i, _ in keep] + new_ids, [t for _, t in keep] + new_texts, "x", tmp_path / "b")
    for query in ("sparse lottery ticket molecule", "graph robust", "scaling law language"):
        got, want = updated.search(query, 10), full.search(query, 10)
        assert not {cid for cid, _ in got} & set(removed)
        assert got[0][0] in {c for c, _ in want[:3]}  # random texts: near-ties may swap places
        assert len({c for c, _ in got} & {c for c, _ in want}) >= 8  # one IDF and one length norm for all
        assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=0.02)
    assert set(updated.chunk_ids) == {i for i, _ in keep} | set(new_ids)


def test_segments_are_saved_and_loaded_and_old_ones_removed(tmp_path: Path) -> None:
    ids, texts = corpus(50)
    folder = tmp_path / "bm25"
    first = bm25.build(ids, texts, "d1", folder)
    second = first.updated(["n1"], ["sparse lottery"], ["c3"], "d2", lambda _: [])
    assert second is not None
    second.save(folder)
    loaded = bm25.load(folder)
    assert loaded is not None and loaded.digest == "d2" and loaded.deleted == {"c3"}
    assert [s.name for s in loaded.segments] == [s.name for s in second.segments]
    assert sorted(p.name for p in folder.iterdir()) == sorted([*(s.name for s in second.segments), "manifest.json"])
    assert loaded.search("sparse lottery", 50)[0][0] == "n1"


def test_many_segments_are_merged_and_too_many_deletions_ask_for_a_rebuild(tmp_path: Path) -> None:
    ids, texts = corpus(200)
    index = bm25.build(ids, texts, "d", tmp_path / "m")
    text_of = dict(zip(ids, texts, strict=True))
    for round_ in range(bm25.MAX_SEGMENTS + 2):
        new = [f"r{round_}"]
        text_of[new[0]] = f"round{round_} sparse"
        step = index.updated(new, [text_of[new[0]]], [], f"d{round_}", lambda want: [text_of[i] for i in want])
        assert step is not None
        index = step
    assert len(index.segments) <= bm25.MAX_SEGMENTS
    assert set(index.chunk_ids) == set(text_of)
    assert index.search("round3", 1)[0][0] == "r3"
    too_many = ids[: int(len(ids) * bm25.MAX_DELETED) + 5]
    assert index.updated([], [], too_many, "z", lambda _: []) is None
    assert index.updated(["c1"], ["again"], ["c1"], "z", lambda _: []) is None  # a deleted row comes back


def test_the_digest_is_updated_from_what_an_ingest_adds_and_removes() -> None:
    ids = [f"id{i}" for i in range(100)]
    assert ids_digest(ids) == ids_digest(reversed(ids))
    assert updated_digest(ids_digest(ids[:60]), ids[60:], []) == ids_digest(ids)
    assert updated_digest(ids_digest(ids), [], ids[:10]) == ids_digest(ids[10:])
    assert ids_digest(ids[:-1]) != ids_digest(ids)


def test_an_ingest_adds_a_bm25_segment_instead_of_rebuilding(
    fresh_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bm25, "MAX_DELETED", 0.5)  # six papers: one removed is more than 10% of the rows
    six_papers = [(p.title, p.abstract) for p in load_corpus()[:6]]
    rag.ingest([write_jsonl(tmp_path / "a.jsonl", six_papers[:4])], settings=fresh_settings, progress=False)
    folder = PaperIndex(fresh_settings).bm25_folder
    first = json.loads((folder / "manifest.json").read_text())["segments"]
    b = write_jsonl(tmp_path / "b.jsonl", six_papers[4:])
    rag.ingest([b], settings=fresh_settings, progress=False)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["segments"][: len(first)] == first and len(manifest["segments"]) == len(first) + 1
    title = six_papers[5][0]
    assert rag.search(title, k=1, retriever="bm25", settings=fresh_settings)[0].title == title
    all_ids = [cid for cid, _, _ in iter_records(opened(fresh_settings).chunks, include_documents=False)]
    assert manifest["digest"] == ids_digest(all_ids)
    (removed,) = [p for p in rag.indexed_papers(settings=fresh_settings) if p.title == title]
    rag.remove_papers([removed.paper_id], settings=fresh_settings)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["deleted"] and len(manifest["segments"]) == len(first) + 1
    hits = rag.search(title, k=10, retriever="bm25", settings=fresh_settings)
    assert title not in {h.title for h in hits}


def test_a_large_ingest_builds_segments_as_it_goes_and_ranks_like_one_build(tmp_path: Path) -> None:
    """An ingest's chunks become segments of SEGMENT_ROWS as they arrive (their texts are then let go)."""
    rng = random.Random(3)
    ids = [f"c{i}" for i in range(450)]
    texts = [" ".join(rng.choices(VOCAB, k=3 + i // 10)) for i in range(450)]  # longer and longer: the average moves
    folder = tmp_path / "bm25"
    new = bm25.SegmentBuilder(bm25.BM25Index(ids_digest([]), []), folder, rows=100)
    for cid, text in zip(ids, texts, strict=True):
        new.add(cid, text)
    assert [s.size for s in new._segments] == [100] * 4  # built while adding, not at the end
    assert sorted(p.name for p in folder.iterdir()) == sorted(s.name for s in new._segments)  # written at once
    assert all(isinstance(s.model.scores["data"], np.memmap) for s in new._segments)  # and not held in memory
    joined = new.base.joined(new, [], "d", lambda _: []) if new.base is not None else None
    assert joined is not None and [s.size for s in joined.segments] == [100, 100, 100, 100, 50]
    full = bm25.build(ids, texts, "x", tmp_path / "full")
    for query in ("sparse lottery ticket", "graph molecule robust", "scaling law"):
        got, want = dict(joined.search(query, 450)), dict(full.search(query, 450))
        assert got.keys() == want.keys() and len(got) > 100
        assert got == pytest.approx(want, rel=1e-4)  # every chunk scores as in one build (ties make ranks moot)
    assert bm25.SegmentBuilder(None).finish() == []  # no base: the ingest rebuilds from Chroma, nothing is kept


def test_a_merge_reads_at_most_segment_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bm25, "SEGMENT_ROWS", 120)
    ids, texts = corpus(900)
    text_of = dict(zip(ids, texts, strict=True))
    fetched: list[int] = []

    def fetch(want: list[str]) -> list[str]:
        fetched.append(len(want))
        return [text_of[i] for i in want]

    index = bm25.BM25Index("d", [bm25.Segment.build(ids[:100], texts[:100])], avgdl=10.0)
    sizes = [100, 100, 100, 100, 100, 100, 100, 40, 30, 30]  # 10 segments: more than MAX_SEGMENTS
    start = 100
    for n in sizes[1:]:
        step = index.updated(ids[start : start + n], texts[start : start + n], [], "d", fetch)
        assert step is not None
        index, start = step, start + n
    assert fetched and max(fetched) <= 120  # only the small ones merged, within the bound
    assert len(index.chunk_ids) == sum(sizes) and sorted(index.chunk_ids) == sorted(ids[: sum(sizes)])


def test_a_rebuild_of_a_large_collection_is_segmented_and_scores_exactly_as_one_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond SEGMENT_ROWS a rebuild builds segments as the chunks arrive (no segment's texts are held at once);
    short chunks first and long ones later still score as in one build: a query renormalises the lengths."""
    rng = random.Random(5)
    ids = [f"c{i}" for i in range(130)]
    texts = [" ".join(rng.choices(VOCAB, k=5 if i < 65 else 40)) for i in range(130)]  # short, then long
    monkeypatch.setattr(bm25, "SEGMENT_ROWS", 40)
    built = bm25.build_streamed(zip(ids, texts, strict=True), lambda got: f"digest of {len(got)}", tmp_path / "s")
    assert [s.size for s in built.segments] == [40, 40, 40, 10] and built.digest == "digest of 130"
    monkeypatch.setattr(bm25, "SEGMENT_ROWS", 1000)
    full = bm25.build(ids, texts, "x", tmp_path / "full")
    assert built.avgdl == pytest.approx(full.avgdl)
    for query in ("sparse lottery ticket", "graph molecule robust", "scaling law language"):
        got, want = dict(built.search(query, 130)), dict(full.search(query, 130))
        assert got.keys() == want.keys() and got == pytest.approx(want, rel=1e-4)
    loaded = bm25.load(tmp_path / "s")
    assert loaded is not None and [s.size for s in loaded.segments] == [40, 40, 40, 10]
    got, want = dict(loaded.search("graph molecule", 130)), dict(full.search("graph molecule", 130))
    assert got == pytest.approx(want, rel=1e-4)  # the lengths are saved with the segments and mapped back
    assert not [p for p in (tmp_path / "s").iterdir() if p.is_file() and p.name != "manifest.json"]  # no spill left
    small = bm25.build_streamed(zip(ids[:30], texts[:30], strict=True), lambda got: "d", tmp_path / "one")
    assert [s.size for s in small.segments] == [30]  # up to SEGMENT_ROWS: one segment, as a build


def test_segments_of_different_lengths_score_as_one_build_and_old_segments_as_built(tmp_path: Path) -> None:
    """Short abstracts ingested first and long ones later: the average length moved, and a query follows it."""
    rng = random.Random(7)
    short = [" ".join(rng.choices(VOCAB, k=4)) for _ in range(60)]
    long = [" ".join(rng.choices(VOCAB, k=60)) for _ in range(60)]
    ids = [f"c{i}" for i in range(120)]
    first = bm25.build(ids[:60], short, "d1", tmp_path / "bm25")
    second = first.updated(ids[60:], long, [], "d2", lambda _: [])
    assert second is not None and second.segments[1].normalised_by == pytest.approx(first.avgdl)  # built stale
    full = bm25.build(ids, short + long, "x", tmp_path / "full")
    for query in ("sparse lottery ticket", "graph molecule robust"):
        got, want = dict(second.search(query, 120)), dict(full.search(query, 120))
        assert got.keys() == want.keys() and got == pytest.approx(want, rel=1e-4)
    stale = bm25.BM25Index("d2", [dataclasses.replace(s, lengths=None) for s in second.segments], avgdl=first.avgdl)
    off = dict(stale.search("graph molecule robust", 120))  # without lengths (an index saved before they were
    assert off != pytest.approx(dict(full.search("graph molecule robust", 120)), rel=0.05)  # kept): as built
    second.save(tmp_path / "bm25")
    for seg in second.segments:  # what an older version saved: no lengths beside the matrices
        (tmp_path / "bm25" / seg.name / "lengths.npy").unlink()
    legacy = bm25.load(tmp_path / "bm25")
    assert legacy is not None and all(s.lengths is None for s in legacy.segments)
    assert dict(legacy.search("graph molecule robust", 120)) == pytest.approx(off, rel=1e-6)
    (tmp_path / "bm25" / second.segments[0].name / "lengths.npy").write_bytes(b"")  # cut short: rebuilt, no crash
    assert bm25.load(tmp_path / "bm25") is None
