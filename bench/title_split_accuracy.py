"""Blind title recovery (no known titles) on every bundled paper whose title the other formats state."""

from __future__ import annotations

from rag.corpus import load_corpus
from rag.title_split import split_title

papers = load_corpus()
wrong = [p for p in papers if split_title(f"{p.title} {p.abstract}")[0] != p.title]
print(f"titles recovered: {len(papers) - len(wrong)}/{len(papers)} = {1 - len(wrong) / len(papers):.1%}")
for p in wrong:
    print(f"  missed: {p.title}")
