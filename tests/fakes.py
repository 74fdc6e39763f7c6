"""A deterministic, dependency-free embedder for fast logic tests, through the `Library(settings, embedder=…)`
seam. It hashes stemmed words into a fixed number of dimensions: texts that share words get similar vectors, which
is enough to exercise ingest, search, the answer path and its bookkeeping without loading a model. Tests of
retrieval or answer quality use the real MiniLM."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from rag.text import content_terms

DIM = 64


class HashEmbedder:
    """Bag of stemmed content words, hashed into DIM dimensions and normalised (a SpanEmbedder)."""

    model_id = "test-hash-64"

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(DIM, dtype=np.float32)
        for term in content_terms(text):
            digest = hashlib.blake2b(term.encode(), digest_size=8).digest()
            vector[int.from_bytes(digest[:4], "little") % DIM] += 1.0 if digest[4] % 2 else -1.0
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm else vector

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([self._vector(t) for t in texts], dtype=np.float32).reshape(len(texts), DIM)

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]] | None
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        pooled = [
            np.array([self._vector(t[a:b]) for a, b in s], dtype=np.float32).reshape(len(s), DIM)
            for t, s in zip(texts, spans or [[] for _ in texts], strict=True)
        ]
        return self.embed_array(texts), pooled

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_array([text])[0].tolist()  # type: ignore[no-any-return]
