"""Blind title recovery (no known titles) on every bundled paper whose title the other formats state."""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file (python bench/x.py): make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse

argparse.ArgumentParser(description=__doc__).parse_args()  # --help, and no stray arguments

from rag.ingest.corpus import load_corpus
from rag.ingest.titles import split_title

papers = load_corpus()
wrong = [p for p in papers if split_title(f"{p.title} {p.abstract}")[0] != p.title]
print(f"titles recovered: {len(papers) - len(wrong)}/{len(papers)} = {1 - len(wrong) / len(papers):.1%}")
for p in wrong:
    print(f"  missed: {p.title}")
