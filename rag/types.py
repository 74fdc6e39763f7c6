"""Plain data types shared by every layer (no behaviour, no I/O)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: Metadata values must be scalars so they can be stored in Chroma as they are.
MetaValue = str | int | float | bool


@dataclass(frozen=True)
class Paper:
    """One paper of the collection, de-duplicated across the files it came from."""

    paper_id: str
    title: str
    abstract: str
    sources: tuple[str, ...] = ()
    metadata: dict[str, MetaValue] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Chunk:
    """A piece of one abstract, with the paper title at its head, as embedded and indexed."""

    chunk_id: str
    paper_id: str
    title: str
    text: str
    index: int


@dataclass(frozen=True)
class Hit:
    """One search result: the best-matching chunk of one paper."""

    paper_id: str
    title: str
    text: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
