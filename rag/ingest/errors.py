"""The error every input format raises: the file, the line, and what is wrong."""

from __future__ import annotations

from pathlib import Path


class CorpusError(ValueError):
    """An input file cannot be read as papers; the message names the file and line."""

    def __init__(self, path: Path | str, line: int | None, problem: str) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.line = line
        self.problem = problem
