"""The probe: one fixed sentence whose vector tells whether two embedders are the same model.

An index records, next to its model id, the vector its model gives the probe (in the chunks
collection's metadata, base64 float32). Opened with an embedder of another name (the same
MiniLM behind an embedding server, say), the index is used only if that embedder gives the
probe nearly the same vector (cosine >= AGREE); otherwise IndexModelMismatch names both models,
the cosine and what to do. An index without a probe (built before probes) can be compared only
when its model is the packaged MiniLM, which can embed the probe here.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.config import MINILM, Settings, redact_url
from rag.index.errors import IndexModelMismatch

if TYPE_CHECKING:
    from rag.index.embedder import Embedder

log = logging.getLogger(__name__)

PROBE_KEY = "probe_vector"
PROBE_TEXT = "Pruned sparse subnetworks can be trained from their original initialization to full accuracy."
AGREE = 0.99


def encode(vector: np.ndarray) -> str:
    """Compact text form for Chroma metadata (whose values are scalars): little-endian float32, base64."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def decode(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)


def vector_of(embedder: Embedder) -> np.ndarray:
    """The embedder's unit vector for the probe sentence."""
    vector = np.asarray(embedder.embed_query(PROBE_TEXT), dtype=np.float32)
    return vector / (np.linalg.norm(vector) or 1.0)


def embedder_named(model_id: str, settings: Settings, given: Embedder | None = None) -> Embedder | None:
    """An embedder whose `model_id` is `model_id`: `given`, the packaged MiniLM or the settings' one; else None."""
    if given is not None and given.model_id == model_id:
        return given
    if model_id == MINILM:
        from rag.index.minilm import MiniLMEmbedder

        return MiniLMEmbedder()
    if settings.embedding_base_url is None and settings.embedding_model == MINILM:
        return None  # the settings choose the packaged model: `model_id` is an embedder of the caller's own
    from rag.index.embedder import make_embedder

    made = make_embedder(settings)
    return made if made.model_id == model_id else None


def probe_metadata(settings: Settings, model_id: str, embedder: Embedder | None) -> dict[str, str]:
    """The probe entry of a new index's metadata (none when no embedder is at hand).

    Without `embedder`, the packaged model is not loaded a second time to compute it: its probe
    can be computed whenever needed.
    """
    if embedder is None and model_id == MINILM:
        return {}
    current = embedder_named(model_id, settings, embedder)
    return {} if current is None else {PROBE_KEY: encode(vector_of(current))}


def ensure_agreement(
    meta: Mapping[str, Any], built_with: object, settings: Settings, model_id: str, embedder: Embedder | None
) -> None:
    """Return if the index (built with `built_with`) may be used with `model_id`; else IndexModelMismatch."""
    where = settings.index_location()
    using = f"RAG_EMBEDDING_MODEL is {model_id!r}"
    if settings.embedding_base_url:
        using += f" (at the embedding server {redact_url(settings.embedding_base_url)})"
        original = "sentence-transformers/all-MiniLM-L6-v2" if built_with == MINILM else repr(built_with)
        fix = (
            "run `rag ingest --rebuild` to re-embed it with the server's model, or have the embedding server "
            f"serve {original} (and set RAG_EMBEDDING_MODEL to its name there)"
        )
    else:
        fix = (
            "run `rag ingest --rebuild` to re-embed it, or set RAG_EMBEDDING_MODEL (and RAG_EMBEDDING_BASE_URL, "
            "for a model on an embedding server) back to what built it"
        )
    head = f"the index at {where} was built with embedding model {built_with!r}, but {using}"
    stored = meta.get(PROBE_KEY)
    current = embedder_named(model_id, settings, embedder)
    if current is None or not (isinstance(stored, str) or built_with == MINILM):
        raise IndexModelMismatch(f"{head}, and their vectors cannot be compared; {fix}")
    if isinstance(stored, str):
        theirs = decode(stored)
    else:
        from rag.index.minilm import MiniLMEmbedder

        theirs = vector_of(MiniLMEmbedder())
    ours = vector_of(current)
    if ours.shape != theirs.shape:
        raise IndexModelMismatch(
            f"{head}, whose vectors have {ours.shape[0]} dimensions, not the index's {theirs.shape[0]}; {fix}"
        )
    cosine = float(ours @ theirs)
    if cosine < AGREE:
        raise IndexModelMismatch(
            f"{head}, and the two models disagree: a probe sentence's vectors have cosine {cosine:.3f} "
            f"(the same model gives at least {AGREE}); {fix}"
        )
    log.info(
        "the index at %s was built with %r; %r gives the same vectors (probe cosine %.4f): using it",
        where,
        built_with,
        model_id,
        cosine,
    )
