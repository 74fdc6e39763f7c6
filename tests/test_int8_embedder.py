"""The int8 MiniLM graph derived from the packaged file: it computes in int8, agrees with the packaged
graph, is built once and cached, and anything wrong with a build falls back to the packaged graph."""

from __future__ import annotations

import collections
import logging
from pathlib import Path

import numpy as np
import pytest

from rag.index import minilm_int8
from rag.index.minilm import MINILM_SHA256, MiniLMEmbedder
from rag.ingest.chunking import chunk_papers
from rag.ingest.corpus import load_corpus


@pytest.fixture(scope="module")
def chunks() -> list[str]:
    return [c.text for c in chunk_papers(load_corpus())][::8]


def test_the_int8_graph_computes_in_int8_and_agrees_with_the_packaged_one(chunks: list[str]) -> None:
    import onnx

    fast = MiniLMEmbedder()
    vectors = fast.embed_array(chunks)
    assert fast._int8
    reference = MiniLMEmbedder(int8=False).embed_array(chunks)
    cosines = (vectors * reference).sum(axis=1)
    assert cosines.mean() >= 0.99 and cosines.min() >= 0.98
    graph = onnx.load(str(minilm_int8.cached_path(MINILM_SHA256)))
    ops = collections.Counter(node.op_type for node in graph.graph.node)
    assert ops["QAttention"] == 6  # the six layers' attention, fused and quantized
    assert ops["MatMul"] == 0 and ops["DynamicQuantizeMatMul"] + ops["MatMulInteger"] >= 12


def test_a_text_gets_the_same_vector_alone_or_among_others(chunks: list[str]) -> None:
    """Activations are quantized per run, so each text runs alone: its batch-mates cannot change its vector."""
    embedder = MiniLMEmbedder()
    together = embedder.embed_array(chunks[:6])
    alone = np.vstack([embedder.embed_array([t]) for t in chunks[:6]])
    assert np.array_equal(together, alone)


def test_the_graph_is_built_once_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_MODEL_CACHE", str(tmp_path))
    first = MiniLMEmbedder().embed_array(["lottery tickets"])
    (built,) = tmp_path.glob("*.onnx")

    def no_rebuild(*_: object) -> None:
        raise AssertionError("rebuilt although the cached graph exists")

    monkeypatch.setattr(minilm_int8, "build", no_rebuild)
    again = MiniLMEmbedder()
    assert np.array_equal(again.embed_array(["lottery tickets"]), first) and again._int8
    assert list(tmp_path.glob("*.onnx")) == [built]


@pytest.mark.parametrize("failure", ["build raises", "build disagrees"])
def test_a_failed_build_falls_back_to_the_packaged_graph(
    failure: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("RAG_MODEL_CACHE", str(tmp_path))
    if failure == "build raises":

        def broken(*_: object) -> None:
            raise OSError("No space left on device")

        monkeypatch.setattr(minilm_int8, "build", broken)
    else:
        monkeypatch.setattr(minilm_int8, "MIN_AGREEMENT", 1.01)  # no int8 graph can agree that well
    with caplog.at_level(logging.WARNING, logger="rag.index.minilm"):
        embedder = MiniLMEmbedder()
        vectors = embedder.embed_array(["lottery tickets", "scaling laws"])
    assert not embedder._int8
    assert np.allclose(vectors, MiniLMEmbedder(int8=False).embed_array(["lottery tickets", "scaling laws"]))
    assert "using the packaged MiniLM graph" in caplog.text
    assert not list(tmp_path.glob("*.onnx"))  # nothing half-built or unchecked is left to be used later
