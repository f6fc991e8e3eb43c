"""The project's error types: what the user can act on, as opposed to bugs.

The command line prints a `MovierecError` as one line and exits 1; any other exception keeps its
traceback, because it means the code is wrong, not the input.
"""

from __future__ import annotations

from pathlib import Path


class MovierecError(Exception):
    """A failure with a message meant for the person running the command."""


class ParameterError(MovierecError, ValueError):
    """A parameter outside the values the code supports; names the parameter and the choices."""


class DataError(MovierecError):
    """An input file cannot be used; names the file and what is wrong with it."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def check_choice(name: str, value: str, choices: tuple[str, ...] | dict) -> str:
    """`value` if it is one of `choices`, else a ParameterError listing them."""
    if value not in choices:
        raise ParameterError(f"unknown {name} {value!r}; choose from {', '.join(choices)}")
    return value
