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
class CollectionStats:
    """What an index holds; `updated_at` is when the last ingest or removal finished (epoch seconds)."""

    papers: int
    chunks: int
    source_files: int | None  # None: not counted (a collection over SOURCE_COUNT_LIMIT papers)
    embedding_model: str
    location: str
    updated_at: float | None = None

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
    """One search result: the best-matching chunk of one paper, and the signals that ranked it."""

    paper_id: str
    title: str
    text: str
    score: float
    signals: dict[str, float] = field(default_factory=dict)  # dense/bm25 rank and score, title_match, rare_name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Citation:
    """A paper the answer rests on; `evidence` is the abstract sentence(s) that support it."""

    title: str
    paper_id: str
    evidence: str
    abstract: str = ""
    # Provenance its files gave (authors, year, venue, arxiv_id, doi, url, ...) and the files themselves.
    metadata: dict[str, MetaValue] = field(default_factory=dict)
    sources: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DroppedCitation:
    """Something the model cited that is not among the retrieved sources: never shown as real."""

    cited: str
    reason: str


@dataclass(frozen=True)
class SentenceCheck:
    """An answer sentence with markers, and whether its cited evidence supports it."""

    sentence: str
    markers: tuple[int, ...]
    supported: bool
    score: float


@dataclass
class Answer:
    """The answer to one question. `text` carries [n] markers; citations[n-1] is source n."""

    text: str
    citations: list[Citation]
    abstained: bool
    sources: list[Hit]
    backend: str
    timings: dict[str, float] = field(default_factory=dict)
    question: str = ""
    standalone_question: str = ""
    intent: str = "lookup"  # the answer's shape: list, explain, compare, detail or lookup
    excluded_titles: list[str] = field(default_factory=list)  # the previous turn's papers, for "another paper?"
    dropped_citations: list[DroppedCitation] = field(default_factory=list)
    sentence_checks: list[SentenceCheck] = field(default_factory=list)
    confidence: float = 0.0  # P(the best source answers the question), from the answerability model
    support: str = ""  # "strong" or "partial" (empty when abstained)
    paper_support: dict[str, float] = field(default_factory=dict)  # paper id -> P(it answers), every source
    first_text_seconds: float = 0.0  # from the question to the first piece of the answer (time to first token)

    @property
    def unsupported_sentences(self) -> list[str]:
        return [c.sentence for c in self.sentence_checks if not c.supported]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["unsupported_sentences"] = self.unsupported_sentences
        return data
