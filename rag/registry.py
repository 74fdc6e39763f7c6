"""Plug-in registries: a setting's value names "module:attribute", imported only when chosen.

Adding an answerer or an embedder is one new module plus one line in its registry; nothing
heavy is imported until a configuration picks it.
"""

from __future__ import annotations

import fnmatch
import importlib
from typing import Any


def load(spec: str) -> Any:
    """The object a "package.module:attribute" spec names."""
    module, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module), attribute)


def lookup(registry: dict[str, str], name: str) -> str | None:
    """The spec registered for `name`: an exact key, else the first matching glob key (e.g. "text-embedding-*")."""
    if name in registry:
        return registry[name]
    return next((spec for pattern, spec in registry.items() if fnmatch.fnmatchcase(name, pattern)), None)
