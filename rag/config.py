"""Every knob in one place: environment variables (RAG_*, OPENAI_*) and a `.env` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MINILM = "all-MiniLM-L6-v2-onnx-int8"
OPENAI_EMBEDDING = "text-embedding-3-small"


def default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "paper-rag"


class Settings(BaseSettings):
    """Configuration; functions take explicit arguments that default to these values."""

    model_config = SettingsConfigDict(env_prefix="RAG_", env_file=".env", extra="ignore", populate_by_name=True)

    index_dir: Path = Field(default_factory=lambda: default_data_dir() / "index")
    chroma_host: str | None = None
    chroma_port: int | None = None
    collection: str = "papers"

    embedding_model: str = MINILM
    embedding_batch_size: int = Field(default=8, ge=1)
    embedding_threads: int = Field(default=0, ge=0, description="0: onnxruntime decides")
    max_abstract_chars: int = Field(
        default=20_000,
        ge=100,
        description="longest abstract accepted at ingest (arXiv allows 1,920 characters); longer is an error",
    )
    chunk_tokens: int = Field(default=256, ge=32, le=256)
    chunk_overlap: int = Field(default=32, ge=0)

    top_k: int = Field(default=5, ge=1, le=50)
    retriever: Literal["hybrid", "dense", "bm25"] = "hybrid"
    rrf_k: int = Field(default=60, ge=1)
    title_match_threshold: float = Field(default=88.0, ge=0, le=100)

    llm: Literal["auto", "extractive", "openai"] = "auto"
    chat_model: str = "gpt-4o-mini"
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "RAG_OPENAI_API_KEY")
    )
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_BASE_URL", "RAG_OPENAI_BASE_URL")
    )

    context_tokens: int = Field(default=2500, ge=200, description="token budget for the numbered sources")
    max_answer_tokens: int = Field(default=256, ge=16)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    llm_timeout: float = Field(default=120.0, gt=0)
    llm_max_retries: int = Field(default=2, ge=0, le=10)

    local_model_state_dir: Path = Field(
        default_factory=lambda: Path.home() / ".cache" / "paper-rag" / "local-model",
        description="where `rag local-model` records its server, so a crash can be reported by other processes",
    )

    ui_concurrency: int = Field(default=4, ge=1, le=64, description="answers computed at once in the UI")

    @field_validator("index_dir", "local_model_state_dir")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return Path(value).expanduser()

    def with_overrides(self, **overrides: object) -> Settings:
        """A validated copy with some fields changed (secrets stay secret, ranges are checked)."""
        unknown = set(overrides) - set(type(self).model_fields)
        if unknown:
            raise TypeError(f"unknown option(s) {sorted(unknown)}; valid: {sorted(type(self).model_fields)}")
        data = {name: getattr(self, name) for name in type(self).model_fields}
        return type(self).model_validate({**data, **overrides})

    @property
    def uses_chroma_server(self) -> bool:
        return bool(self.chroma_host)

    def index_location(self) -> str:
        """Where the index lives, for messages and the UI header (never a secret)."""
        if self.uses_chroma_server:
            return f"chroma server {self.chroma_host}:{self.chroma_port or 8000}"
        return str(self.index_dir)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
