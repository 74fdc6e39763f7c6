"""Embeddings from an OpenAI-compatible embedding server (RAG_EMBEDDING_BASE_URL).

Text Embeddings Inference, Infinity, vLLM, Ollama and llama.cpp all answer `POST /v1/embeddings`.
Texts go in batches of RAG_EMBEDDING_REQUEST_BATCH, RAG_EMBEDDING_CONCURRENCY requests at a time;
vectors come back in input order and L2-normalised. A failure (unreachable, an HTTP error after the
client's retries, an answer of the wrong shape) is an EmbeddingServerError naming the URL and what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.config import MINILM, Settings, redact_url
from rag.index.errors import EmbeddingServerError

if TYPE_CHECKING:
    import openai

TIMEOUT = 120.0  # seconds per request: a CPU-only server embeds a full batch slowly
MAX_RETRIES = 3  # the openai client's retries (exponential backoff) of connection errors, 408, 409, 429 and 5xx
_RETRIED = {408, 409, 429}


class ServerEmbedder:
    """A model behind an OpenAI-compatible server; `model_id` is its name there (RAG_EMBEDDING_MODEL).

    `model` None: the server's only model (GET /v1/models), else an error asking to name one.
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        concurrency: int = 4,
        request_batch: int = 64,
        timeout: float = TIMEOUT,
        max_retries: int = MAX_RETRIES,
    ) -> None:
        from openai import OpenAI

        self.base_url = base_url
        self.where = redact_url(base_url)
        self.concurrency = max(1, concurrency)
        self.request_batch = max(1, request_batch)
        self.timeout = timeout
        self.max_retries = max_retries
        # An explicit placeholder key: the client must not pick up (and send) OPENAI_API_KEY.
        self._client = OpenAI(
            base_url=base_url, api_key=api_key or "not-needed", max_retries=max_retries, timeout=timeout
        )
        self.model_id: str = model if model is not None else self._only_model()

    def _only_model(self) -> str:
        try:
            ids = [m.id for m in self._client.models.list()]
        except Exception as exc:
            raise self._failure(exc, "listing its models (GET /v1/models)") from exc
        if len(ids) == 1:
            return str(ids[0])
        listed = ", ".join(map(str, ids[:8])) + (", ..." if len(ids) > 8 else "")
        served = f"{len(ids)} models ({listed})" if ids else "no model"
        raise EmbeddingServerError(
            f"the embedding server at {self.where} lists {served}; "
            "set RAG_EMBEDDING_MODEL to the name of the embedding model it should use"
        )

    # --- the Embedder protocol ----------------------------------------------------------

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_array([text])[0].tolist()  # type: ignore[no-any-return]

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        """A (len(texts), dim) float32 array of unit vectors, in input order."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        step = self.request_batch
        batches = [texts[i : i + step] for i in range(0, len(texts), step)]
        if len(batches) == 1 or self.concurrency == 1:
            parts = [self._request(batch) for batch in batches]
        else:
            with ThreadPoolExecutor(min(self.concurrency, len(batches)), thread_name_prefix="embedding-server") as pool:
                futures = [pool.submit(self._request, batch) for batch in batches]
                try:
                    parts = [future.result() for future in futures]
                except BaseException:
                    for future in futures:
                        future.cancel()  # the first failure is the answer: send no more requests
                    raise
        dims = sorted({part.shape[1] for part in parts})
        if len(dims) > 1:
            raise self._wrong(f"vectors of differing dimensions ({', '.join(map(str, dims))})")
        return np.vstack(parts)

    # --- one request ----------------------------------------------------------------------

    def _request(self, batch: list[str]) -> np.ndarray:
        try:
            response = self._client.embeddings.create(model=self.model_id, input=batch, encoding_format="float")
        except Exception as exc:
            raise self._failure(exc, f"embedding {len(batch)} texts with model {self.model_id!r}") from exc
        try:
            data = list(response.data)
            if len(data) != len(batch):
                raise self._wrong(f"{len(data)} vectors for {len(batch)} texts")
            positions = [p for p in (getattr(item, "index", None) for item in data) if isinstance(p, int)]
            if len(positions) == len(data):  # each vector says which text it is for: put them in input order
                if sorted(positions) != list(range(len(batch))):
                    raise self._wrong(f"vectors at positions {sorted(positions)[:8]}... for {len(batch)} texts")
                data = [item for _, item in sorted(zip(positions, data, strict=True), key=lambda pair: pair[0])]
            vectors = np.array([item.embedding for item in data], dtype=np.float32)
        except EmbeddingServerError:
            raise
        except (AttributeError, TypeError, ValueError) as exc:  # no data, ragged or non-numeric vectors
            raise self._wrong(f"an answer that is not one vector per text ({type(exc).__name__}: {exc})") from exc
        if vectors.ndim == 3:
            raise self._wrong(
                "one vector per token, not one per text; start it with pooling (llama.cpp: --pooling mean; "
                "llama-cpp-python: --kv_overrides <arch>.pooling_type=int:1)"
            )
        if vectors.ndim != 2 or vectors.shape[1] == 0 or not np.isfinite(vectors).all():
            raise self._wrong(f"vectors of shape {vectors.shape} or with non-finite values")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if (norms == 0).any():
            raise self._wrong("a zero vector")
        unit: np.ndarray = (vectors / norms).astype(np.float32)
        return unit

    # --- errors that say what to do -------------------------------------------------------

    def _wrong(self, what: str) -> EmbeddingServerError:
        return EmbeddingServerError(
            f"the embedding server at {self.where} returned {what} (model {self.model_id!r}); "
            "check that RAG_EMBEDDING_BASE_URL points at an OpenAI-compatible embedding endpoint "
            "and RAG_EMBEDDING_MODEL names an embedding model it serves"
        )

    def _failure(self, exc: BaseException, doing: str) -> EmbeddingServerError:
        import openai

        where = f"the embedding server at {self.where}"
        n = self.max_retries
        retried = f" (after {n} {'retry' if n == 1 else 'retries'})" if n else ""
        if isinstance(exc, openai.APITimeoutError):
            return EmbeddingServerError(
                f"{where} did not answer within {self.timeout:.0f} s{retried} while {doing}; check that it is "
                "running and not overloaded, or lower RAG_EMBEDDING_REQUEST_BATCH or RAG_EMBEDDING_CONCURRENCY"
            )
        if isinstance(exc, openai.APIConnectionError):
            return EmbeddingServerError(
                f"cannot reach {where}{retried} while {doing} ({self._cause(exc)}); start it or fix "
                "RAG_EMBEDDING_BASE_URL, or unset RAG_EMBEDDING_BASE_URL to embed with the packaged model"
            )
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            if status in (401, 403):
                hint = "set RAG_EMBEDDING_API_KEY to the key it expects"
            elif status == 404:
                hint = (
                    "check that RAG_EMBEDDING_BASE_URL ends in /v1 and that RAG_EMBEDDING_MODEL names a model "
                    "it lists at /v1/models"
                )
            elif status >= 500 or status in _RETRIED:
                hint = (
                    "see the server's log (if it ran out of memory or its batch is too small, lower "
                    "RAG_EMBEDDING_REQUEST_BATCH or RAG_EMBEDDING_CONCURRENCY)"
                )
            else:
                hint = (
                    "check that RAG_EMBEDDING_MODEL names an embedding model it serves; if the texts are too "
                    "long for it, lower RAG_EMBEDDING_REQUEST_BATCH or RAG_CHUNK_TOKENS"
                )
            again = retried if status >= 500 or status in _RETRIED else ""
            return EmbeddingServerError(
                f"{where} answered HTTP {status}{again} while {doing}: {self._detail(exc)}; {hint}"
            )
        return EmbeddingServerError(f"{where} failed while {doing}: {self._cause(exc)}")

    def _cause(self, exc: BaseException) -> str:
        cause = exc.__cause__ or exc
        text = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        return self._clean(text)

    def _detail(self, exc: openai.APIStatusError) -> str:
        body: Any = exc.body
        if isinstance(body, dict):
            inner = body.get("error", body.get("detail", body.get("message", body)))
            if isinstance(inner, dict):
                inner = inner.get("message", inner)
            text = str(inner)
        else:
            text = str(body) if body else exc.message
        return self._clean((text.strip().splitlines() or ["no detail"])[0])

    def _clean(self, text: str) -> str:
        """One short line that cannot leak the URL's credentials or the key."""
        return text.replace(self.base_url, self.where)[:300]


def server_from_settings(settings: Settings) -> ServerEmbedder:
    """The embedder RAG_EMBEDDING_BASE_URL selects; RAG_EMBEDDING_MODEL left at the default asks the server."""
    if not settings.embedding_base_url:
        raise ValueError("the embedding server needs RAG_EMBEDDING_BASE_URL")
    key = settings.embedding_api_key.get_secret_value() if settings.embedding_api_key else None
    return ServerEmbedder(
        settings.embedding_base_url,
        None if settings.embedding_model == MINILM else settings.embedding_model,
        api_key=key,
        concurrency=settings.embedding_concurrency,
        request_batch=settings.embedding_request_batch,
    )
