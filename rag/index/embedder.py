"""The embedder seam: what an embedding model must offer; chosen in rag.registry by RAG_EMBEDDING_(BASE_URL|MODEL)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from rag.config import Settings
from rag.registry import EMBEDDERS, EMBEDDING_SERVER, load, lookup


@runtime_checkable
class Embedder(Protocol):
    """An embedding model; `model_id` is stored with the index so another model is refused, not mixed."""

    model_id: str

    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...


@runtime_checkable
class SpanEmbedder(Embedder, Protocol):
    """An embedder that also pools sentence vectors from the same pass ("late chunking")."""

    def embed_array(self, texts: list[str]) -> np.ndarray: ...

    def embed_with_spans(
        self, texts: list[str], spans: list[list[tuple[int, int]]] | None
    ) -> tuple[np.ndarray, list[np.ndarray]]: ...


def make_embedder(settings: Settings) -> Embedder:
    """The embedder the settings choose: an embedding server when RAG_EMBEDDING_BASE_URL is set, else by model name."""
    spec = EMBEDDING_SERVER if settings.embedding_base_url else lookup(EMBEDDERS, settings.embedding_model)
    if spec is None:
        raise ValueError(f"unknown RAG_EMBEDDING_MODEL {settings.embedding_model!r}; known: {', '.join(EMBEDDERS)}")
    embedder: Embedder = load(spec)(settings)
    return embedder
