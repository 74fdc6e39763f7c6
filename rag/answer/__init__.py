"""Question → cited Answer: ask, follow-ups, sources, answerers, verification and abstention."""
