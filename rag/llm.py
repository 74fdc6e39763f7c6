"""Which model answers, and the OpenAI-compatible chat client with clear, non-falling-back errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from langchain_openai import ChatOpenAI

from rag.config import Settings, redact_url

Backend = Literal["extractive", "openai"]


class BackendError(RuntimeError):
    """The configured answering backend failed; the message names it and the setting to check."""


def resolve_backend(settings: Settings) -> Backend:
    """RAG_LLM, with auto = openai when a key or a base URL is configured, else the offline answerer."""
    if settings.llm == "auto":
        return "openai" if settings.openai_api_key or settings.openai_base_url else "extractive"
    return settings.llm


def backend_name(settings: Settings) -> str:
    """What the user is shown as the answering model (never a secret)."""
    if resolve_backend(settings) == "extractive":
        return "extractive"
    if settings.openai_base_url:
        parsed = urlsplit(redact_url(settings.openai_base_url))
        return f"openai-compatible:{settings.chat_model}@{parsed.netloc.removeprefix('***@') or parsed.path}"
    return f"openai:{settings.chat_model}"


def chat_model(settings: Settings, streaming: bool = False) -> ChatOpenAI:
    from langchain_openai import ChatOpenAI  # imported here: the offline path never loads it

    if settings.openai_api_key is None and settings.openai_base_url is None:
        raise BackendError("RAG_LLM=openai needs OPENAI_API_KEY, or OPENAI_BASE_URL for a local server")
    return ChatOpenAI(
        model=settings.chat_model,
        api_key=settings.openai_api_key or "not-needed",  # type: ignore[arg-type]
        base_url=settings.openai_base_url,
        temperature=settings.temperature,
        max_tokens=settings.max_answer_tokens,  # type: ignore[call-arg]
        # Servers that ignore max_completion_tokens (llama-cpp-python's) read max_tokens.
        extra_body={"max_tokens": settings.max_answer_tokens},
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,
        streaming=streaming,
    )


@contextmanager
def backend_errors(settings: Settings) -> Iterator[None]:
    """Turn client exceptions into a BackendError that names the backend and what to check."""
    import httpx
    import openai

    from rag.local_server import server_failure

    name = backend_name(settings)
    where = f"OPENAI_BASE_URL={redact_url(settings.openai_base_url)}" if settings.openai_base_url else "OPENAI_API_KEY"
    try:
        yield
    except openai.AuthenticationError as exc:
        raise BackendError(f"{name} refused the credentials (401); check OPENAI_API_KEY") from exc
    except openai.APITimeoutError as exc:
        raise BackendError(
            f"{name} timed out after {settings.llm_timeout:.0f} s; check {where} or raise RAG_LLM_TIMEOUT"
        ) from exc
    except (openai.APIConnectionError, httpx.TransportError) as exc:
        # A dropped connection may be a crashed local server: say how it died rather than "unreachable".
        died = server_failure(settings.openai_base_url, settings.local_model_state_dir)
        if died:
            raise BackendError(f"{name}: the local model server {died}") from exc
        if isinstance(exc, httpx.TransportError):
            raise BackendError(f"{name} dropped the connection mid-answer ({exc}); check the server's log") from exc
        hint = " (for the bundled local model, start `rag local-model`)" if settings.openai_base_url else ""
        raise BackendError(f"{name} is unreachable; check {where}{hint}") from exc
    except openai.NotFoundError as exc:
        raise BackendError(f"{name}: model or endpoint not found (404); check RAG_CHAT_MODEL and {where}") from exc
    except openai.APIStatusError as exc:
        raise BackendError(f"{name} answered with HTTP {exc.status_code}; check {where} and the server's log") from exc
