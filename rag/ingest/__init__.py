"""Files → Paper → chunks: input formats, title recovery, the corpus, chunking and the ingest pipeline."""
