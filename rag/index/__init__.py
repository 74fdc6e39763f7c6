"""Chunks → vectors + BM25 → ranked papers: embedders, the Chroma store, records, BM25, search, PaperIndex."""
