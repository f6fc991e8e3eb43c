"""The one error type the pipeline raises for bad input, so callers can print it as one line."""

from __future__ import annotations

from pathlib import Path


class DataError(Exception):
    """An input file cannot be used; names the file and what is wrong with it."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
