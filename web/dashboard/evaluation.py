"""The offline quality figures `movierec evaluate` last wrote, shaped for the overview's table.

The report is a file of the output folder, not part of a version: it is read on each view (a
few kilobytes) and shown with the time it was written, so nobody takes it for the live
version's own figures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    values: list[float | None]  # in the order of `Evaluation.metrics`


@dataclass(frozen=True)
class Evaluation:
    written_at: float  # Unix time
    users_evaluated: int | None
    list_length: int | None
    metrics: list[str]
    methods: list[Method]


def read_evaluation(path: Path) -> Evaluation | None:
    """None when no evaluation ran, or its file cannot be read as one."""
    try:
        report = json.loads(path.read_text())
        written_at = path.stat().st_mtime
        results: dict[str, dict] = report["results"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    metrics = list(next(iter(results.values()), {}))
    descriptions = report.get("methods", {})
    methods = [
        Method(name, descriptions.get(name, ""), [scores.get(m) for m in metrics])
        for name, scores in results.items()
    ]
    return Evaluation(
        written_at=written_at,
        users_evaluated=report.get("counts", {}).get("users_evaluated"),
        list_length=report.get("protocol", {}).get("list_length"),
        metrics=metrics,
        methods=methods,
    )
