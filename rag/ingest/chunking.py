"""Split abstracts into chunks that fit the embedding window, with the title at the head of each.

Lengths are counted in MiniLM word-pieces (the real tokenizer), so no chunk is
silently truncated by the model; the title costs part of every chunk's budget.
A chunk ends at a sentence boundary when one falls in the second half of its
budget (else after a comma or semicolon, else between words), and the next
chunk starts `overlap` word-pieces earlier, at a word boundary, so every pair
of neighbours shares text. (LangChain's recursive splitter overlaps only
whole pieces: with sentences longer than the overlap, half of the bundled
neighbours shared nothing.)
"""

from __future__ import annotations

import hashlib

from rag.text import sentence_spans
from rag.tokens import MINILM_WINDOW, count_tokens, token_offsets, truncate_to_tokens
from rag.types import Chunk, Paper

_SPECIAL_TOKENS = 2  # [CLS] and [SEP]
_MIN_BODY_TOKENS = 32


def _boundaries(text: str, offsets: list[tuple[int, int]]) -> tuple[list[bool], list[bool], list[bool]]:
    """Per token: does a sentence, a clause or a word start at it?"""
    sentence_starts = {a for a, _ in sentence_spans(text)}
    word, clause, sentence = [True], [True], [True]
    for i in range(1, len(offsets)):
        gap = offsets[i][0] > offsets[i - 1][1]
        word.append(gap)
        clause.append(gap and text[offsets[i - 1][1] - 1] in ",;:")
        sentence.append(offsets[i][0] in sentence_starts)
    return sentence, clause, word


def split_tokens(text: str, budget: int, overlap: int) -> list[str]:
    """Pieces of `text` of at most `budget` word-pieces; neighbours share up to `overlap` of them."""
    offsets = token_offsets(text)
    if len(offsets) <= budget:
        return [text.strip()] if text.strip() else []
    sentence, clause, word = _boundaries(text, offsets)
    overlap = min(overlap, budget // 2)
    pieces: list[str] = []
    start = 0
    while True:
        if len(offsets) - start <= budget:
            pieces.append(text[offsets[start][0] :].strip())
            return pieces
        limit = start + budget  # the chunk holds tokens start .. end-1, end <= limit
        end = limit
        for kind in (sentence, clause, word):
            found = next((i for i in range(limit, start + budget // 2, -1) if kind[i]), None)
            if found is not None:
                end = found
                break
        pieces.append(text[offsets[start][0] : offsets[end - 1][1]].strip())
        following = end
        if overlap:
            following = next((i for i in range(end - overlap, end) if i > start and word[i]), end)
        start = max(following, start + 1)


def chunk_id_for(paper_id: str, text: str, repeat: int = 0) -> str:
    """Content hash: unchanged text keeps its id, so re-ingesting it is a no-op.

    `repeat` tells apart a chunk whose text occurs again in the same abstract.
    """
    key = f"{paper_id}\x00{text}" + (f"\x00{repeat}" if repeat else "")
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def chunk_paper(paper: Paper, chunk_tokens: int = MINILM_WINDOW, overlap: int = 32) -> list[Chunk]:
    """The paper's chunks: "title\\nabstract piece", each at most `chunk_tokens` word-pieces.

    A title longer than a quarter of the window is cut in the chunks (the record keeps it whole),
    so that every chunk has room for abstract text.
    """
    head = truncate_to_tokens(paper.title, chunk_tokens // 4) + "\n"
    if count_tokens(head + paper.abstract) + _SPECIAL_TOKENS <= chunk_tokens:  # the common case: no split
        text = head + paper.abstract
        return [Chunk(chunk_id_for(paper.paper_id, text), paper.paper_id, paper.title, text, 0)]
    budget = max(_MIN_BODY_TOKENS, chunk_tokens - _SPECIAL_TOKENS - count_tokens(head))
    pieces = split_tokens(paper.abstract, budget, overlap) or [paper.abstract]
    chunks = []
    seen: dict[str, int] = {}
    for index, piece in enumerate(pieces):
        text = head + piece
        repeat = seen[text] = seen.get(text, -1) + 1
        chunks.append(Chunk(chunk_id_for(paper.paper_id, text, repeat), paper.paper_id, paper.title, text, index))
    return chunks


def chunk_papers(papers: list[Paper], chunk_tokens: int = MINILM_WINDOW, overlap: int = 32) -> list[Chunk]:
    return [c for p in papers for c in chunk_paper(p, chunk_tokens, overlap)]
