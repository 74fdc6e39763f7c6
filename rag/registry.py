"""The plug-in registries: a setting's value names a "module:attribute", imported only when chosen.

Adding an answerer or an embedder is one new module plus one line here; nothing heavy is
imported until a configuration picks it, and the settings, the CLI and `rag eval` take
their choices from these tables.
"""

from __future__ import annotations

import fnmatch
import importlib
from typing import Any

# RAG_LLM -> an Answerer class (rag.answer.answerers). "auto" picks the first configured one, else the offline one.
ANSWERERS: dict[str, str] = {
    "openai": "rag.answer.answerers.chat:ChatAnswerer",
    "extractive": "rag.answer.answerers.extractive:ExtractiveAnswerer",
}
OFFLINE_ANSWERER = "extractive"

# RAG_EMBEDDING_MODEL (exact, or a glob) -> a factory taking Settings and returning an Embedder (rag.index.embedder).
EMBEDDERS: dict[str, str] = {
    "all-MiniLM-L6-v2-onnx-int8": "rag.index.minilm:minilm_from_settings",
    "text-embedding-*": "rag.index.openai_embedder:openai_from_settings",
}
# RAG_EMBEDDING_BASE_URL set: an OpenAI-compatible embedding server embeds, whatever RAG_EMBEDDING_MODEL names.
EMBEDDING_SERVER = "rag.index.server_embedder:server_from_settings"


def load(spec: str) -> Any:
    """The object a "package.module:attribute" spec names."""
    module, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module), attribute)


def lookup(registry: dict[str, str], name: str) -> str | None:
    """The spec registered for `name`: an exact key, else the first matching glob key (e.g. "text-embedding-*")."""
    if name in registry:
        return registry[name]
    return next((spec for pattern, spec in registry.items() if fnmatch.fnmatchcase(name, pattern)), None)
