"""A benchmark's generated part of BENCHMARKS.md: replaced between its markers on a rerun, or
appended under its heading the first time; everything else in the file is kept."""

from __future__ import annotations

from pathlib import Path


def write_section(path: Path, body: str, heading: str, begin: str, end: str) -> None:
    text = path.read_text() if path.is_file() else "# Benchmarks\n"
    block = f"{begin}\n{body}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = f"{text.rstrip()}\n\n{heading}\n\n{block}\n"
    path.write_text(text)


def report(body: str, path: Path | None, heading: str, begin: str, end: str) -> None:
    """Print the section, and put it into `path` (the `--write` of a benchmark) when given."""
    print(body)
    if path is not None:
        write_section(path, body, heading, begin, end)
