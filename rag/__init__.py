"""Ask questions of a collection of paper abstracts; answers cite the papers they rest on.

Public API: `load_corpus`, `build_index` (alias of `ingest`), `search`, `ask`, `ask_stream`, and the types.
"""

from typing import TYPE_CHECKING, Any

from rag.offline import seed_tiktoken_cache

seed_tiktoken_cache()  # before anything imports tiktoken: its encodings load offline

from rag.config import Settings, get_settings  # noqa: E402
from rag.corpus import load_corpus  # noqa: E402
from rag.formats import CorpusError  # noqa: E402
from rag.index import index_exists, indexed_papers  # noqa: E402
from rag.ingest import IngestReport, ingest  # noqa: E402
from rag.llm import BackendError  # noqa: E402
from rag.retrieval import search  # noqa: E402
from rag.store import IndexModelMismatch, IndexUnavailable, RagIndexError  # noqa: E402
from rag.types import Answer, Citation, Hit, Paper  # noqa: E402

build_index = ingest

if TYPE_CHECKING:
    from rag.chain import ask, ask_stream


def __getattr__(name: str) -> Any:
    """ask/ask_stream load the chat stack (LangChain-OpenAI) on first use: `rag ingest` starts faster."""
    if name in ("ask", "ask_stream"):
        from rag import chain

        return getattr(chain, name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")


__all__ = [
    "Answer",
    "BackendError",
    "Citation",
    "CorpusError",
    "Hit",
    "IndexModelMismatch",
    "IndexUnavailable",
    "IngestReport",
    "Paper",
    "RagIndexError",
    "Settings",
    "ask",
    "ask_stream",
    "build_index",
    "get_settings",
    "index_exists",
    "indexed_papers",
    "ingest",
    "load_corpus",
    "search",
]
