"""Split abstracts into chunks that fit the embedding window, with the title at the head of each.

Lengths are counted in MiniLM word-pieces (the real tokenizer), so no chunk is
silently truncated by the model; the title costs part of every chunk's budget.
"""

from __future__ import annotations

import hashlib

from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag.tokens import MINILM_WINDOW, count_tokens
from rag.types import Chunk, Paper

_SPECIAL_TOKENS = 2  # [CLS] and [SEP]
_MIN_BODY_TOKENS = 32
_SEPARATORS = ["\n\n", "\n", ". ", "; ", ", ", " ", ""]


def chunk_id_for(paper_id: str, text: str, repeat: int = 0) -> str:
    """Content hash: unchanged text keeps its id, so re-ingesting it is a no-op.

    `repeat` tells apart a chunk whose text occurs again in the same abstract.
    """
    key = f"{paper_id}\x00{text}" + (f"\x00{repeat}" if repeat else "")
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def chunk_paper(paper: Paper, chunk_tokens: int = MINILM_WINDOW, overlap: int = 32) -> list[Chunk]:
    """The paper's chunks: "title\\nabstract piece", each at most `chunk_tokens` word-pieces."""
    head = paper.title + "\n"
    if count_tokens(head + paper.abstract) + _SPECIAL_TOKENS <= chunk_tokens:  # the common case: no split
        text = head + paper.abstract
        return [Chunk(chunk_id_for(paper.paper_id, text), paper.paper_id, paper.title, text, 0)]
    budget = max(_MIN_BODY_TOKENS, chunk_tokens - _SPECIAL_TOKENS - count_tokens(head))
    splitter = RecursiveCharacterTextSplitter(
        separators=_SEPARATORS,
        chunk_size=budget,
        chunk_overlap=min(overlap, budget // 2),
        length_function=count_tokens,
        keep_separator="end",
        strip_whitespace=True,
    )
    pieces = splitter.split_text(paper.abstract) or [paper.abstract]
    chunks = []
    seen: dict[str, int] = {}
    for index, piece in enumerate(pieces):
        text = head + piece
        repeat = seen[text] = seen.get(text, -1) + 1
        chunks.append(Chunk(chunk_id_for(paper.paper_id, text, repeat), paper.paper_id, paper.title, text, index))
    return chunks


def chunk_papers(papers: list[Paper], chunk_tokens: int = MINILM_WINDOW, overlap: int = 32) -> list[Chunk]:
    return [c for p in papers for c in chunk_paper(p, chunk_tokens, overlap)]
