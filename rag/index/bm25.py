"""BM25 over the same chunks as Chroma (bm25s), persisted beside it without pickle.

The saved index carries the digest of the chunk ids it covers; the Chroma
collection carries the digest of what it holds. They differ after an ingest
from another process or an interrupted one, and then the BM25 index is
rebuilt from Chroma, which is the source of truth.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import bm25s
from rapidfuzz import process

from rag.text import stemmer

_META = "chunks.json"
log = logging.getLogger(__name__)
logging.getLogger("bm25s").setLevel(logging.WARNING)  # it announces every index build at INFO
_SWAP_LOCK = threading.Lock()  # one folder swap at a time within a process


def _tokens(texts: list[str]) -> list[list[str]]:
    out = bm25s.tokenize(texts, stopwords="en", stemmer=stemmer(), return_ids=False, show_progress=False)
    return out  # type: ignore[no-any-return]


@dataclass
class BM25Index:
    """A loaded BM25 index and the chunk ids of its rows."""

    digest: str
    chunk_ids: list[str]
    model: bm25s.BM25 | None
    _long: list[str] | None = field(default=None, repr=False)

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """(chunk id, BM25 score) best first; empty when no query term is in the vocabulary."""
        if self.model is None or not self.chunk_ids:
            return []
        tokens = _tokens([query])[0]
        vocab = self.model.vocab_dict
        tokens = [t for t in tokens if t in vocab]
        if not tokens:
            return []
        k = min(k, len(self.chunk_ids))
        docs, scores = self.model.retrieve([tokens], k=k, show_progress=False, n_threads=1)
        return [(self.chunk_ids[int(d)], float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]

    def knows(self, text: str) -> bool:
        """Whether every word of `text` is in the indexed vocabulary; a long word (7+ letters) may be a typo
        away (ratio >= 88) from one that is. Empty text, or an empty index, knows nothing."""
        if self.model is None:
            return False
        vocab = self.model.vocab_dict
        tokens = _tokens([text])[0]
        if not tokens:
            return False
        for token in tokens:
            if token in vocab:
                continue
            if len(token) < 7 or process.extractOne(token, self._long_words(), score_cutoff=88) is None:
                return False
        return True

    def _long_words(self) -> list[str]:
        if self._long is None:
            self._long = [w for w in (self.model.vocab_dict if self.model else {}) if len(w) >= 6]
        return self._long


def build(chunk_ids: list[str], texts: list[str], digest: str, folder: Path) -> BM25Index:
    """Index `texts` and save atomically to `folder` (a reader never sees half an index)."""
    model = None
    if texts:
        model = bm25s.BM25()
        model.index(_tokens(texts), show_progress=False)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    if model is not None:
        model.save(str(tmp), show_progress=False)
    (tmp / _META).write_text(json.dumps({"digest": digest, "chunk_ids": chunk_ids}))
    with _SWAP_LOCK:
        old = folder.with_name(folder.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            folder.rename(old)
        tmp.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    return BM25Index(digest, chunk_ids, model)


def load(folder: Path) -> BM25Index | None:
    """The saved index, or None when there is none or it is unreadable (it is then rebuilt)."""
    try:
        meta = json.loads((folder / _META).read_text())
        chunk_ids = [str(c) for c in meta["chunk_ids"]]
        model = None
        if chunk_ids:
            model = bm25s.BM25.load(str(folder), show_progress=False, allow_pickle=False)
            # Files that parse but disagree (ids cut short, a matrix from another build) are rebuilt too.
            indices = model.scores["indices"]
            if int(model.scores["num_docs"]) != len(chunk_ids) or (
                len(indices) and int(indices.max()) >= len(chunk_ids)
            ):
                log.warning("the BM25 index in %s is inconsistent; rebuilding it", folder)
                return None
        return BM25Index(str(meta["digest"]), chunk_ids, model)
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
