"""Synthetic papers and vectors for the scale benchmarks (bench/scale.py, bench/filter_latency.py).

Embedding hundreds of thousands of chunks with the real model takes hours on 2 cores, so these runs embed with
`HashEmbedder`; everything else they measure is the real thing.
"""

from __future__ import annotations

import json
import random
import re
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

# --- the synthetic embedder ------------------------------------------------------------


class HashEmbedder:
    """Deterministic, cheap 384-dim vectors: hashed bag of words times a fixed random projection.

    Each word falls in one of 2^14 buckets (crc32); a bucket is a fixed Gaussian 384-vector; a text's
    vector is the normalised sum over its words. Shared words mean similar vectors, so dense
    retrieval still ranks; the vectors mean nothing beyond that. Not a SpanEmbedder: no sentence
    vectors are stored, as with any plain embedder.
    """

    model_id = "bench-hash-384"
    dim = 384
    _BUCKETS = 1 << 14
    _WORD = re.compile(r"[a-z0-9]+")

    def __init__(self) -> None:
        self._projection = np.random.default_rng(0).standard_normal((self._BUCKETS, self.dim)).astype(np.float32)
        self.seconds = 0.0  # time spent embedding (to tell it apart from Chroma's)
        self.texts = 0

    def _vectors(self, texts: list[str]) -> np.ndarray:
        start = time.perf_counter()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            buckets = [zlib.crc32(w.encode()) & (self._BUCKETS - 1) for w in self._WORD.findall(text.lower())]
            if buckets:
                out[row] = self._projection[buckets].sum(axis=0)
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        self.seconds += time.perf_counter() - start
        self.texts += len(texts)
        return out

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._vectors(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self._vectors([text])[0].tolist()  # type: ignore[no-any-return]


# --- synthetic papers ------------------------------------------------------------------

BASE_VOCAB = (
    "network neural learning gradient model transformer attention sparse kernel random feature scaling law "
    "width depth approximation universal lottery ticket graph diffusion prior bayesian optimisation loss "
    "landscape convex robust adversarial memory prompt token language vision operator equivariant"
).split()


def make_vocab(size: int = 400, seed: int = 0) -> list[str]:
    """The 36 words above plus pseudo-words made of syllables, deterministically (distinct, 2-4 syllables)."""
    rng = random.Random(seed)
    onsets, vowels, codas = (
        "b c d f g h k l m n p r s t v z tr pl st gr".split(),
        "a e i o u ia eo".split(),
        ["", "n", "r", "s", "x", "l"],
    )
    words = list(BASE_VOCAB)
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


VOCAB = make_vocab()
ZIPF = list(np.cumsum([1.0 / (rank + 1) for rank in range(len(VOCAB))]))  # a few words are common, most rare


SURNAMES = [f"Author{n:04d}" for n in range(2000)]  # 2,000 surnames: one names about 0.15% of the papers
CATEGORIES = [f"cs.{c}" for c in "LG CV CL AI NE IR RO SY DS GT".split()] + ["stat.ML", "math.OC", "hep-th"]


def paper_line(rng: random.Random, i: int, metadata: bool = False) -> str:
    """One paper as a JSONL line: unique title and identifier, 18 Zipf-distributed words; with `metadata`, a
    year (2000-2025), three authors and two arXiv categories, uniformly drawn."""
    title = f"Synthetic paper {i} on " + " ".join(rng.choices(VOCAB, cum_weights=ZIPF, k=3))
    abstract = " ".join(rng.choices(VOCAB, cum_weights=ZIPF, k=18)) + f" identifier {i}."
    row: dict[str, object] = {"title": title, "abstract": abstract}
    if metadata:
        row["year"] = rng.randint(2000, 2025)
        row["authors"] = "; ".join(f"{name}, A." for name in rng.sample(SURNAMES, 3))
        row["categories"] = " ".join(rng.sample(CATEGORIES, 2))
    return json.dumps(row) + "\n"


def write_papers(path: Path, first: int, count: int, seed: int, metadata: bool = False) -> Path:
    """Papers first .. first+count-1 into `path`, streamed (one line in memory at a time)."""
    rng = random.Random(seed)
    with path.open("w") as f:
        for i in range(first, first + count):
            f.write(paper_line(rng, i, metadata))
    return path


def queries(n: int, seed: int = 1) -> Iterator[str]:
    rng = random.Random(seed)
    for _ in range(n):  # 3 common-ish and 3 uniformly drawn words
        yield " ".join(rng.choices(VOCAB, cum_weights=ZIPF, k=3) + rng.choices(VOCAB, k=3))
