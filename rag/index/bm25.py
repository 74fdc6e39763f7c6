"""BM25 over the same chunks as Chroma (bm25s), in segments that an ingest adds to, persisted without pickle.

A full build is one segment. An ingest then adds segments of the chunks it
added (one per `SEGMENT_ROWS`, built as they arrive) and marks the chunks it
removed as deleted, so a small ingest into a million-chunk index costs
seconds, not a rebuild (LSM-style). Scores stay comparable across segments:
each segment's precomputed scores carry its own IDF and the average chunk
length it was built with; a query rescales them to the IDF of all segments
together and, from the chunk lengths each segment keeps, to the average
length of all rows when that has moved (short abstracts first, long ones
later), so every chunk scores as in one build. Small segments are merged
when there are more than `MAX_SEGMENTS`, at most `SEGMENT_ROWS` rows at a time (a large index keeps
more segments than that: a query's cost is in its rows, not its segments); a full rebuild
(from Chroma, the source of truth) happens when deleted rows pass
`MAX_DELETED` of the total, or when the saved index does not match the
collection's digest (an ingest from another process, an interrupted one).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import bm25s
import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA

from rag.text import stemmer

_MANIFEST = "manifest.json"
_IDS = "chunk_ids.json"
_LENGTHS = "lengths.npy"  # tokens per row, beside bm25s' files in a segment's folder
_NORM = "normalised_by.json"  # the average length a segment's scores were built with
RENORMALISE = 0.005  # relative drift of the average length beyond which a query renormalises a segment
MAX_SEGMENTS = 8
SEGMENT_ROWS = 50_000  # chunks per segment an ingest builds, and per merge: bounds their memory (~0.35 GB)
MAX_DELETED = 0.10  # share of all rows; more, and the index is rebuilt from Chroma
log = logging.getLogger(__name__)
logging.getLogger("bm25s").setLevel(logging.WARNING)  # it announces every index build at INFO
_SWAP_LOCK = threading.Lock()  # one manifest swap at a time within a process


_WORD_RE = re.compile(r"(?u)\b\w\w+\b")  # bm25s' token pattern
_STOPWORDS = frozenset(bm25s.stopwords.STOPWORDS_EN)
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


class Weight(NamedTuple):
    token: str
    idf: float
    known: bool  # the collection uses the word (or a word one typo away)
    common: bool  # an everyday English word
    word: str = ""  # as written in the text


def _one_edit(word: str) -> set[str]:
    """Every string one deletion, transposition, substitution or insertion away from `word`."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    deletes = {a + b[1:] for a, b in splits if b}
    transposes = {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    replaces = {a + c + b[1:] for a, b in splits if b for c in _LETTERS}
    inserts = {a + c + b for a, b in splits for c in _LETTERS}
    return deletes | transposes | replaces | inserts


def _everyday(word: str, english: frozenset[str]) -> bool:
    """An English word, or a typo of one ("wich", "lawz"): not a name."""
    return word in english or (len(word) >= 4 and not _one_edit(word).isdisjoint(english))


def tokens(text: str) -> list[str]:
    """`text` as BM25 indexes it: lower-cased, stop words removed, stemmed."""
    return _tokens([text])[0]


def _tokens(texts: Sequence[str]) -> list[list[str]]:
    out = bm25s.tokenize(list(texts), stopwords="en", stemmer=stemmer(), return_ids=False, show_progress=False)
    return out  # type: ignore[no-any-return]


class _BM25(bm25s.BM25):  # type: ignore[misc]
    """bm25s' BM25, whose length normalisation can use the average length of the index a segment joins.

    A segment of a few chunks would otherwise normalise by its own average and score its short
    chunks unlike the same chunks in a full build. Mirrors bm25s 0.3's `build_index_from_ids`
    (the "lucene" method, which needs no non-occurrence array) with `avgdl` in place of its own.
    """

    def __init__(self, avgdl: float | None = None) -> None:
        super().__init__()
        self.avgdl = avgdl

    def build_index_from_ids(
        self,
        unique_token_ids: list[int],
        corpus_token_ids: list[list[int]],
        show_progress: bool = True,
        leave_progress: bool = False,
    ) -> dict[str, Any]:
        if self.avgdl is None or self.method != "lucene":
            return super().build_index_from_ids(unique_token_ids, corpus_token_ids, show_progress, leave_progress)  # type: ignore[no-any-return]
        n_docs, n_vocab = len(corpus_token_ids), len(unique_token_ids)
        df = bm25s._calculate_doc_freqs(
            corpus_tokens=corpus_token_ids, unique_tokens=unique_token_ids, show_progress=False
        )
        idf = bm25s._build_idf_array(
            doc_frequencies=df,
            n_docs=n_docs,
            compute_idf_fn=bm25s._select_idf_scorer(self.idf_method),
            dtype=self.dtype,
        )
        flat, doc_idx, vocab_idx = bm25s._build_scores_and_indices_for_matrix(
            corpus_token_ids=corpus_token_ids, idf_array=idf, avg_doc_len=self.avgdl, doc_frequencies=df,
            k1=self.k1, b=self.b, delta=self.delta, show_progress=False, leave_progress=False,
            dtype=self.dtype, int_dtype=self.int_dtype, method=self.method, nonoccurrence_array=None,
        )  # fmt: skip
        self.nonoccurrence_array = None
        data, indices, indptr = self._np_csc(data=flat, rows=doc_idx, cols=vocab_idx, shape=(n_docs, n_vocab))
        return {"data": data.astype(self.dtype), "indices": indices, "indptr": indptr, "num_docs": n_docs}


@dataclass
class Segment:
    """One bm25s index and the chunk ids of its rows."""

    name: str
    chunk_ids: list[str]
    model: bm25s.BM25
    lengths: np.ndarray | None = None  # tokens per row; None in a segment saved before they were kept
    normalised_by: float = 0.0  # the average length its scores were built with

    @classmethod
    def build(cls, chunk_ids: list[str], texts: Sequence[str], avgdl: float | None = None) -> Segment:
        """`avgdl`: the average chunk length (in tokens) of the index this segment joins; None: its own."""
        tokens = _tokens(texts)
        lengths = np.array([len(t) for t in tokens], dtype=np.int32)
        model = _BM25(avgdl)
        model.index(tokens, show_progress=False)
        return cls(uuid.uuid4().hex[:12], chunk_ids, model, lengths, avgdl or float(lengths.mean()))

    @property
    def size(self) -> int:
        return len(self.chunk_ids)

    def renormalised(self, rows: np.ndarray, contributions: np.ndarray, idf: float, avgdl: float) -> np.ndarray:
        """`contributions` of `rows` as if built with average length `avgdl`.

        bm25s stores idf * tf / (tf + K) with K = k1 * (1 - b + b * length / average): the term frequency is
        recovered exactly (it is a whole number), then scored with the new K."""
        drift = abs(avgdl - self.normalised_by)
        if self.lengths is None or not idf or self.normalised_by <= 0 or drift <= RENORMALISE * avgdl:
            return contributions
        k1, b = float(self.model.k1), float(self.model.b)
        lengths = self.lengths[rows].astype(np.float64)
        part = np.minimum(contributions.astype(np.float64) / idf, 1 - 1e-9)
        tf = np.maximum(np.rint(part * k1 * (1 - b + b * lengths / self.normalised_by) / (1 - part)), 1.0)
        rescored: np.ndarray = (idf * tf / (tf + k1 * (1 - b + b * lengths / avgdl))).astype(np.float32)
        return rescored

    def postings(self, token: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(rows, score contributions with this segment's IDF) of a token; None when absent."""
        tid = self.model.vocab_dict.get(token)
        indptr = self.model.scores["indptr"]
        if tid is None or tid + 1 >= len(indptr):  # bm25s' empty token has no column
            return None
        start, end = int(indptr[tid]), int(indptr[tid + 1])
        return self.model.scores["indices"][start:end], self.model.scores["data"][start:end]


class SegmentBuilder:
    """Chunks an ingest adds, built into segments of `SEGMENT_ROWS` as they arrive: their texts are never all held.

    With a `folder`, each segment is written there as soon as it is built and kept memory-mapped, so the
    ingest does not hold its matrices either (the manifest that names them is written at the end; until
    then they are unreferenced and a later save removes them if the ingest dies). Without a `base` (the
    ingest will rebuild BM25 from Chroma) it keeps nothing.
    """

    def __init__(self, base: BM25Index | None, folder: Path | None = None, rows: int | None = None) -> None:
        self.base = base
        self._folder = folder
        self._rows = rows or SEGMENT_ROWS
        self._avgdl = (base.avgdl or None) if base is not None else None  # None: the first segment sets it
        self._ids: list[str] = []
        self._texts: list[str] = []
        self._segments: list[Segment] = []

    def add(self, chunk_id: str, text: str) -> None:
        if self.base is None:
            return
        self._ids.append(chunk_id)
        self._texts.append(text)
        if len(self._ids) >= self._rows:
            self._flush()

    def _flush(self) -> None:
        if not self._ids:
            return
        segment = Segment.build(self._ids, self._texts, self._avgdl)
        self._ids, self._texts = [], []
        self._avgdl = self._avgdl or segment.normalised_by
        if self._folder is not None:  # the same segment, its matrices mapped from the files just written
            _write_segment(segment, self._folder)
            mapped = bm25s.BM25.load(str(self._folder / segment.name), mmap=True, show_progress=False)
            segment = dataclasses.replace(segment, model=mapped)
        self._segments.append(segment)

    def finish(self) -> list[Segment]:
        self._flush()
        return self._segments


def _idf(n_docs: int, df: int) -> float:
    """bm25s' default ("lucene") IDF."""
    return math.log(1 + (n_docs - df + 0.5) / (df + 0.5))


@dataclass
class BM25Index:
    """The loaded segments, the ids deleted since they were built, and the digest of the live ids."""

    digest: str
    segments: list[Segment]
    deleted: frozenset[str] = frozenset()
    avgdl: float = 0.0  # the average chunk length new segments are built with (a query renormalises them)
    _long: list[str] | None = field(default=None, repr=False)
    _vocab: frozenset[str] | None = field(default=None, repr=False)
    mean_length: float = field(default=0.0, init=False)  # of all rows; 0: a segment has no lengths

    def __post_init__(self) -> None:
        """The average length of all rows (deleted ones too, as in the IDF); 0 when a segment has no lengths."""
        if self.segments and all(seg.lengths is not None for seg in self.segments):
            total = sum(int(seg.lengths.sum()) for seg in self.segments if seg.lengths is not None)
            self.mean_length = total / self.rows

    @property
    def chunk_ids(self) -> list[str]:
        """Live chunk ids (every row not deleted)."""
        return [cid for seg in self.segments for cid in seg.chunk_ids if cid not in self.deleted]

    @property
    def rows(self) -> int:
        return sum(seg.size for seg in self.segments)

    def search(self, query: str, k: int, masks: Sequence[np.ndarray] | None = None) -> list[tuple[str, float]]:
        """(chunk id, BM25 score) best first; empty when no query term is in the vocabulary. A misspelt word
        ("lotery", "bigbrid") is searched as the word of the collection one edit away (see `weigh`).

        `masks`: one boolean array per segment, True for the rows a filter admits; the others score 0 before
        ranking (IDF stays the collection's, so a filter changes which papers rank, not how they score)."""
        tokens = [w.token for w in self.weigh(query)] if self.segments else []
        n_docs = self.rows
        hits: list[tuple[str, float]] = []
        if not tokens or not n_docs:
            return hits
        postings = [[seg.postings(t) for t in tokens] for seg in self.segments]
        weights = []
        for i in range(len(tokens)):
            df = sum(len(hit[0]) for hit in (p[i] for p in postings) if hit is not None)
            weights.append(_idf(n_docs, df) if df else 0.0)
        for n, (seg, seg_postings) in enumerate(zip(self.segments, postings, strict=True)):
            scores = np.zeros(seg.size, dtype=np.float32)
            for posting, weight in zip(seg_postings, weights, strict=True):
                if posting is None:
                    continue
                rows, contributions = posting  # a token's rows are distinct: no repeated index
                own = _idf(seg.size, len(rows))
                if self.mean_length:
                    contributions = seg.renormalised(rows, contributions, own, self.mean_length)
                scores[rows] += contributions * np.float32(weight / own if own else 0.0)
            if masks is not None:
                scores[~masks[n]] = 0.0
            want = min(seg.size, k + len(self.deleted))
            top = np.argpartition(-scores, want - 1)[:want] if want < seg.size else np.arange(seg.size)
            taken = 0
            for row in top[np.argsort(-scores[top], kind="stable")]:
                if scores[row] <= 0 or taken >= k:
                    break
                if seg.chunk_ids[row] not in self.deleted:
                    hits.append((seg.chunk_ids[row], float(scores[row])))
                    taken += 1
        hits.sort(key=lambda h: -h[1])
        return hits[:k]

    def masks(self, admitted: set[str]) -> list[np.ndarray]:
        """Per segment, which rows are among the `admitted` chunk ids (for `search`)."""
        return [np.fromiter((cid in admitted for cid in seg.chunk_ids), bool, seg.size) for seg in self.segments]

    def weigh(self, text: str, skip: frozenset[str] = frozenset()) -> list[Weight]:
        """(token, IDF, known, common) for each distinct word of `text`, tokenised as BM25 does.

        A word of 5+ letters the collection lacks is read as a typo of one it has when one edit of the word as
        written ("lotery") or of its stem gives a stem the collection has; then it takes that word's IDF. A word that
        matches nothing keeps the largest IDF, `known=False`, and `common` says whether it is an everyday
        English word ("cheaper") rather than a name or an unknown term ("rwkv"). Words in `skip` (the way
        questions are asked: "tell", "summarise") are left out.
        """
        from rag.tokens import english_words

        n_docs = self.rows
        out: dict[str, Weight] = {}
        for written in _WORD_RE.findall(text):
            word = written.lower()
            if word in _STOPWORDS or word in skip:
                continue
            token = stemmer().stemWord(word)
            if token in out:
                continue
            df = self._df(token)
            if not df and not written.isupper():  # an acronym ("FSDP") is not a typo of a word
                fixed = self._typo_of(word, token)
                if fixed is not None:
                    token, df = fixed, self._df(fixed)
            out[token] = Weight(token, _idf(n_docs, df), df > 0, _everyday(word, english_words()), word)
        return list(out.values())

    def _typo_of(self, word: str, stem: str) -> str | None:
        """A stem the collection has that is one edit away from `word` as written, or from its stem."""
        if len(word) >= 5:
            vocab = self._vocabulary()
            found = sorted(t for t in set(stemmer().stemWords(list(_one_edit(word)))) if t in vocab)
            if found:
                return str(found[0])
        if len(stem) >= 5:
            near = process.extractOne(stem, self._long_words(), scorer=OSA.distance, score_cutoff=1)
            if near is not None:
                found_near: str = near[0]
                return found_near
        return None

    def _df(self, token: str) -> int:
        return sum(len(hit[0]) for seg in self.segments if (hit := seg.postings(token)) is not None)

    def knows(self, text: str) -> bool:
        """Whether the collection uses every word of `text`, a word one edit from one it uses counting (a typo:
        see `weigh`). Empty text, or an empty index, knows nothing."""
        weights = self.weigh(text) if self.segments else []
        return bool(weights) and all(w.known for w in weights)

    def _vocabulary(self) -> frozenset[str]:
        if self._vocab is None:
            self._vocab = frozenset(w for seg in self.segments for w in seg.model.vocab_dict)
        return self._vocab

    def _long_words(self) -> list[str]:
        if self._long is None:
            self._long = sorted({w for seg in self.segments for w in seg.model.vocab_dict if len(w) >= 4})
        return self._long

    def updated(
        self,
        added_ids: list[str],
        added_texts: Sequence[str],
        removed_ids: Sequence[str],
        digest: str,
        fetch_texts: Callable[[list[str]], list[str]],
    ) -> BM25Index | None:
        """This index after an ingest: segments of the added chunks, the removed ones marked deleted (see `joined`)."""
        new = SegmentBuilder(self)
        for chunk_id, text in zip(added_ids, added_texts, strict=True):
            new.add(chunk_id, text)
        return self.joined(new, removed_ids, digest, fetch_texts)

    def joined(
        self,
        new: SegmentBuilder,
        removed_ids: Sequence[str],
        digest: str,
        fetch_texts: Callable[[list[str]], list[str]],
    ) -> BM25Index | None:
        """This index with `new`'s segments added and `removed_ids` marked deleted.

        None when a rebuild is the better course (too many deleted rows, or a re-added id that
        is still a deleted row). `fetch_texts` reads chunk texts from Chroma to merge segments.
        """
        added = new.finish()
        added_ids = [cid for seg in added for cid in seg.chunk_ids]
        deleted = self.deleted | set(removed_ids)
        if deleted & set(added_ids) or len(deleted) > MAX_DELETED * max(self.rows + len(added_ids), 1):
            return None
        segments = [*self.segments, *added]
        if len(segments) > MAX_SEGMENTS:  # merge the smaller half into one (amortised: LSM-style), at most
            small: list[Segment] = []  # SEGMENT_ROWS rows (bounded memory); a larger index keeps more segments
            for seg in sorted(segments, key=lambda s: s.size)[: len(segments) - MAX_SEGMENTS // 2]:
                if sum(s.size for s in small) + seg.size > SEGMENT_ROWS:
                    break
                small.append(seg)
            if len(small) >= 2:
                ids = [cid for seg in small for cid in seg.chunk_ids if cid not in deleted]
                deleted -= {cid for seg in small for cid in seg.chunk_ids}
                merged = [Segment.build(ids, fetch_texts(ids), self.avgdl or None)] if ids else []
                segments = [seg for seg in segments if all(seg is not s for s in small)] + merged
        avgdl = self.avgdl or (segments[0].normalised_by if segments else 0.0)
        return BM25Index(digest, segments, frozenset(deleted), avgdl)

    def save(self, folder: Path) -> None:
        """Write new segments, then the manifest (atomically), then remove unreferenced segments."""
        folder.mkdir(parents=True, exist_ok=True)
        for seg in self.segments:
            _write_segment(seg, folder)
        manifest = {
            "digest": self.digest,
            "segments": [s.name for s in self.segments],
            "deleted": sorted(self.deleted),
            "avgdl": self.avgdl,
        }
        with _SWAP_LOCK:
            with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp") as f:
                json.dump(manifest, f)
            os.replace(f.name, folder / _MANIFEST)
            keep = {s.name for s in self.segments} | {_MANIFEST}
            for path in folder.iterdir():
                if path.name not in keep and not path.name.startswith("."):
                    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def _write_segment(seg: Segment, folder: Path) -> None:
    """A segment's folder, written whole under a temporary name and renamed (unless it is there already)."""
    target = folder / seg.name
    if target.exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{seg.name}.", dir=folder))
    seg.model.save(str(tmp), show_progress=False)
    (tmp / _IDS).write_text(json.dumps(seg.chunk_ids))
    if seg.lengths is not None:
        np.save(tmp / _LENGTHS, seg.lengths, allow_pickle=False)
        (tmp / _NORM).write_text(json.dumps(seg.normalised_by))
    tmp.rename(target)


def build(chunk_ids: list[str], texts: Sequence[str], digest: str, folder: Path) -> BM25Index:
    """Index `texts` as one segment and save it (a reader never sees half an index)."""
    segments = [Segment.build(chunk_ids, texts)] if texts else []
    index = BM25Index(digest, segments, avgdl=segments[0].normalised_by if segments else 0.0)
    index.save(folder)
    return index


def build_streamed(
    records: Iterable[tuple[str, str]], digest_of: Callable[[list[str]], str], folder: Path
) -> BM25Index:
    """Index every (chunk id, text) of `records` and save it, in bounded memory however many there are.

    Up to `SEGMENT_ROWS` chunks this is `build`: one segment. Beyond, segments of `SEGMENT_ROWS` are built
    as the records arrive, each written and mapped at once; a query renormalises them to the average
    length of all rows (see `Segment.renormalised`), so every chunk scores as in one build.
    """
    ids: list[str] = []
    new = SegmentBuilder(BM25Index("", []), folder)
    for chunk_id, text in records:
        ids.append(chunk_id)
        new.add(chunk_id, text)
    index = BM25Index(digest_of(ids), new.finish())
    index.avgdl = index.mean_length  # what later segments are built with
    index.save(folder)
    return index


def load(folder: Path) -> BM25Index | None:
    """The saved index, or None when there is none or it is unreadable (it is then rebuilt)."""
    for _ in range(3):  # a writer may swap the manifest and remove a segment while we read
        try:
            manifest = json.loads((folder / _MANIFEST).read_text())
            avgdl = float(manifest.get("avgdl", 0.0))
            segments = [_load_segment(folder / str(name), avgdl) for name in manifest["segments"]]
            deleted = frozenset(map(str, manifest.get("deleted", [])))
            return BM25Index(str(manifest["digest"]), segments, deleted, avgdl)
        except _Inconsistent:
            log.warning("the BM25 index in %s is inconsistent; rebuilding it", folder)
            return None
        except (OSError, ValueError, KeyError, TypeError, IndexError, EOFError):  # EOFError: an empty .npy
            if not (folder / _MANIFEST).exists():
                return None
    return None


class _Inconsistent(ValueError):
    pass


def _load_segment(folder: Path, avgdl: float, mmap: bool = False) -> Segment:
    chunk_ids = [str(c) for c in json.loads((folder / _IDS).read_text())]
    model = bm25s.BM25.load(str(folder), mmap=mmap, show_progress=False, allow_pickle=False)
    # Files that parse but disagree (ids cut short, a matrix from another build) are rebuilt too.
    indices = model.scores["indices"]
    if int(model.scores["num_docs"]) != len(chunk_ids) or (len(indices) and int(indices.max()) >= len(chunk_ids)):
        raise _Inconsistent(folder)
    if not (folder / _LENGTHS).exists():  # saved before lengths were kept: scored as built
        return Segment(folder.name, chunk_ids, model, None, avgdl)
    lengths = np.load(folder / _LENGTHS, mmap_mode="r" if mmap else None, allow_pickle=False)
    if len(lengths) != len(chunk_ids):
        raise _Inconsistent(folder)
    return Segment(folder.name, chunk_ids, model, lengths, float(json.loads((folder / _NORM).read_text())))
