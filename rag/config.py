"""Every knob in one place: environment variables (RAG_*, OPENAI_*) and a `.env` file."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MINILM = "all-MiniLM-L6-v2-onnx-int8"
_COLLECTION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,58}[A-Za-z0-9]")
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

    @field_validator("collection")
    @classmethod
    def _collection_name(cls, value: str) -> str:
        if not _COLLECTION_RE.fullmatch(value) or ".." in value:
            raise ValueError(
                "must be 3 to 60 letters, digits, '.', '_' or '-', starting and ending with a letter or digit "
                "(a name, not a path: the folder is RAG_INDEX_DIR)"
            )
        return value

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


def redact_url(url: str) -> str:
    """`url` safe to show: no user or password, query values hidden, no fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable URL>"
    netloc = ("***@" if parts.username or parts.password else "") + (f"[{host}]" if ":" in host else host) + port
    query = "&".join(f"{key}=***" for key, _ in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def describe_invalid(exc: ValidationError, names: dict[str, str] | None = None) -> str:
    """One line per invalid setting, named as the user set it (env var, or `names` for call arguments)."""
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        if names is not None:
            label = names.get(field, field)
        else:
            label = (
                "OPENAI_" + field.removeprefix("openai_").upper()
                if field.startswith("openai_")
                else f"RAG_{field.upper()}"
            )
        value = error.get("input")
        shown = "" if "openai" in field or isinstance(value, dict) else f"={value!r}"
        lines.append(f"{label}{shown}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(lines)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The environment's settings; a ValueError naming each invalid variable (not a pydantic dump)."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ValueError(f"invalid settings: {describe_invalid(exc)}") from None
