"""Ask questions of a collection of paper abstracts; answers cite the papers they rest on.

Public API: `load_corpus`, `build_index` (alias of `ingest`), `search`, `ask`, `ask_stream`, and the types.
"""

from rag.offline import seed_tiktoken_cache

seed_tiktoken_cache()  # before anything imports tiktoken: its encodings load offline

from rag.chain import ask, ask_stream  # noqa: E402
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
