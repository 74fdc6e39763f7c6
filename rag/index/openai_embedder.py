"""OpenAI's embedding models (or a compatible server) through LangChain's provider-agnostic factory."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.config import Settings
from rag.tokens import ensure_tiktoken_offline

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings


class OpenAIEmbedder:
    """`model_id` is "openai:<model>": the index records it, so switching models is a clear error."""

    def __init__(self, model: str, embeddings: Embeddings) -> None:
        self.model_id = f"openai:{model}"
        self._embeddings = embeddings

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._embeddings.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self._embeddings.embed_query(text)


def openai_from_settings(settings: Settings) -> OpenAIEmbedder:
    if settings.openai_api_key is None and settings.openai_base_url is None:
        raise ValueError(
            f"RAG_EMBEDDING_MODEL={settings.embedding_model} needs OPENAI_API_KEY (or OPENAI_BASE_URL) to be set"
        )
    from langchain.embeddings import init_embeddings

    ensure_tiktoken_offline()  # the client counts tokens with tiktoken
    embeddings = init_embeddings(
        settings.embedding_model,
        provider="openai",
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url,
        max_retries=2,
        timeout=60,
    )
    return OpenAIEmbedder(settings.embedding_model, embeddings)
