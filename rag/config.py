"""Every knob in one place: environment variables (RAG_*, OPENAI_*) and a `.env` file."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.registry import ANSWERERS

MINILM = "all-MiniLM-L6-v2-onnx-int8"
_COLLECTION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,58}[A-Za-z0-9]")
OPENAI_EMBEDDING = "text-embedding-3-small"


def default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "paper-rag"


def model_cache_dir() -> Path:
    """Where derived model files live (the int8 MiniLM graph, a joined local GGUF); RAG_MODEL_CACHE moves it."""
    import os

    return Path(os.environ.get("RAG_MODEL_CACHE", default_data_dir() / "models"))


class AnswerTuning(BaseModel):
    """How answers are shaped, and overrides of the answerability model's thresholds.

    Whether to answer is decided by the answerability model (rag.answer.answerability), with thresholds
    chosen on the evaluation set's dev split and shipped with it; set RAG_ANSWER__<NAME> to override.
    """

    answer_threshold: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="probability the best paper needs for an answer (lower: fewer abstentions, more wrong "
        "answers); default: the fitted model's, chosen on dev",
    )
    list_threshold: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="probability a paper needs to be named in a 'which papers…' answer; default: the fitted model's",
    )
    max_sentences: int = Field(default=3, ge=1, le=20, description="sentences an explanation quotes at most")
    max_per_paper: int = Field(default=2, ge=1, le=20, description="sentences a lookup quotes from its paper")
    support: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="word overlap or sentence cosine an answer sentence needs with its cited evidence",
    )


class Settings(BaseSettings):
    """Configuration; functions take explicit arguments that default to these values."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_", env_file=".env", extra="ignore", populate_by_name=True, env_nested_delimiter="__"
    )

    index_dir: Path = Field(
        default_factory=lambda: default_data_dir() / "index", description="folder of the embedded index and BM25"
    )
    chroma_host: str | None = Field(
        default=None, description="a Chroma server (`chroma run`) to use instead of the folder"
    )
    chroma_port: int | None = Field(default=None, ge=1, le=65535, description="the Chroma server's port (default 8000)")
    collection: str = Field(default="papers", description="Chroma collection name (a name, not a path)")

    embedding_model: str = Field(
        default=MINILM, description="embedding model; changing it needs `rag ingest --rebuild`"
    )
    embedding_batch_size: int = Field(
        default=8, ge=1, description="texts per embedding call (8 was fastest on 2 cores)"
    )
    embedding_threads: int = Field(default=0, ge=0, description="onnxruntime threads; 0: onnxruntime decides")
    embedding_int8: bool = Field(
        default=True,
        description="run MiniLM as an int8 graph built once from the packaged file (2x faster, cosine >= .99 "
        "with it); false: the packaged graph as is",
    )
    embedding_base_url: str | None = Field(
        default=None,
        description="an OpenAI-compatible embedding server (TEI, Infinity, vLLM, Ollama, llama.cpp), e.g. "
        "http://gpu-box:8080/v1: embeds there, whatever RAG_EMBEDDING_MODEL names, to use a GPU or a bigger model",
    )
    embedding_api_key: SecretStr | None = Field(
        default=None, description="the embedding server's key, if it wants one (most do not; never printed or logged)"
    )
    embedding_concurrency: int = Field(
        default=4, ge=1, le=64, description="requests sent to the embedding server at once (it batches across them)"
    )
    embedding_request_batch: int = Field(
        default=64, ge=1, le=2048, description="texts per embedding-server request (lower it if the server refuses)"
    )
    max_abstract_chars: int = Field(
        default=20_000,
        ge=100,
        description="longest abstract accepted at ingest (arXiv allows 1,920); longer is an error",
    )
    chunk_tokens: int = Field(
        default=256, ge=64, le=256, description="chunk size in MiniLM word-pieces, title included"
    )
    chunk_overlap: int = Field(
        default=32, ge=0, description="word-pieces a chunk repeats from the end of the one before"
    )

    top_k: int = Field(default=5, ge=1, le=50, description="papers per search and per answer")
    list_k: int = Field(
        default=10, ge=1, le=50, description="papers a 'which papers…' question considers (at least top_k)"
    )
    retriever: Literal["hybrid", "dense", "bm25"] = Field(
        default="hybrid", description="ranking used by search and ask"
    )
    rrf_k: int = Field(default=60, ge=1, description="reciprocal-rank-fusion constant for the dense and BM25 rankings")
    title_match_threshold: float = Field(
        default=88.0, ge=0, le=100, description="fuzzy score (0-100) above which text is taken to name a paper's title"
    )
    answer: AnswerTuning = Field(
        default_factory=lambda: AnswerTuning(), description="answer thresholds (RAG_ANSWER__*)"
    )

    llm: str = Field(
        default="auto", description="who answers: auto, or a backend of rag.answer.answerers (extractive, openai)"
    )
    chat_model: str = Field(
        default="gpt-4o-mini", description="chat model name for OpenAI or an OpenAI-compatible server"
    )
    openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENAI_API_KEY", "RAG_OPENAI_API_KEY"),
        description="OpenAI key (never printed or logged)",
    )
    openai_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENAI_BASE_URL", "RAG_OPENAI_BASE_URL"),
        description="an OpenAI-compatible server (llama.cpp, Ollama, vLLM, LM Studio)",
    )

    context_tokens: int = Field(
        default=2500, ge=200, description="token budget (tiktoken) for the sources a chat model gets"
    )
    max_answer_tokens: int = Field(default=256, ge=16, description="longest answer a chat model may write")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="chat model temperature")
    llm_timeout: float = Field(default=120.0, gt=0, description="seconds before a chat request times out")
    llm_max_retries: int = Field(default=2, ge=0, le=10, description="retries of a failed chat request")

    local_model_state_dir: Path = Field(
        default_factory=lambda: Path.home() / ".cache" / "paper-rag" / "local-model",
        description="where `rag local-model` records its server, so a crash can be reported by other processes",
    )

    ui_auth: SecretStr | None = Field(
        default=None, description="user:password the chat UI asks for (required to bind beyond loopback)"
    )
    upload_max_mb: int = Field(default=50, ge=1, le=10_000, description="largest file the Library tab accepts (MB)")
    ui_table_rows: int = Field(
        default=2000,
        ge=10,
        le=50_000,
        description="papers the Library table shows at once; a larger collection is paged, never read whole",
    )
    ui_concurrency: int = Field(default=4, ge=1, le=64, description="answers the chat UI computes at once")
    ui_sessions: int = Field(
        default=200,
        ge=1,
        le=100_000,
        description="browser sessions whose conversation the chat server keeps (the least recently active beyond "
        "this start afresh): bounds the server's memory",
    )

    @field_validator("llm")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if value != "auto" and value not in ANSWERERS:
            raise ValueError(f"must be auto or one of: {', '.join(ANSWERERS)}")
        return value

    @field_validator("collection")
    @classmethod
    def _collection_name(cls, value: str) -> str:
        if not _COLLECTION_RE.fullmatch(value) or ".." in value:
            raise ValueError(
                "must be 3 to 60 letters, digits, '.', '_' or '-', starting and ending with a letter or digit "
                "(a name, not a path: the folder is RAG_INDEX_DIR)"
            )
        return value

    @field_validator("embedding_base_url")
    @classmethod
    def _http_base_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        try:
            parts = urlsplit(value)
            _ = parts.port  # a ValueError when the port is not a number
        except ValueError:
            raise ValueError("must be an http(s) URL such as http://127.0.0.1:8080/v1") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL with a host, such as http://127.0.0.1:8080/v1")
        return value.rstrip("/")

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
    path = parts.path.split(";", 1)[0] + (";***" if ";" in parts.path else "")  # path parameters may hold keys
    return urlunsplit((parts.scheme, netloc, path, query, ""))


def describe_invalid(exc: ValidationError, names: dict[str, str] | None = None) -> str:
    """One line per invalid setting, named as the user set it (env var, or `names` for call arguments)."""
    lines = []
    for error in exc.errors():
        field = "__".join(str(part) for part in error["loc"])
        if names is not None:
            label = names.get(field, field)
        else:
            label = (
                "OPENAI_" + field.removeprefix("openai_").upper()
                if field.startswith("openai_")
                else f"RAG_{field.upper()}"
            )
        value = error.get("input")
        secret = "openai" in field or field in ("embedding_base_url", "embedding_api_key")  # may hold keys
        shown = "" if secret or isinstance(value, dict) else f"={value!r}"
        lines.append(f"{label}{shown}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(lines)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The environment's settings; a ValueError naming each invalid variable (not a pydantic dump)."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ValueError(f"invalid settings: {describe_invalid(exc)}") from None
