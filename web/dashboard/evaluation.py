"""The offline quality figures `movierec evaluate` last wrote, shaped for the overview's table.

The report is kept in the version store beside the versions (`movierec evaluate` puts it
there), so every web host shows it; it is not part of a version: it is read on each view (a
few kilobytes) and shown with the time it was written, so nobody takes it for the live
version's own figures.
"""

from __future__ import annotations

import json
import logging
import weakref
from dataclasses import dataclass

from store.objects import StoreUnavailable
from store.versions import Report, VersionStore
from web.recent import Recent

log = logging.getLogger(__name__)


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


REPORT_SECONDS = 30.0  # a report changes when `movierec evaluate` runs: rarely
_reports: weakref.WeakKeyDictionary[VersionStore, dict[str, Recent[Report | None]]] = (
    weakref.WeakKeyDictionary()
)


def _stored_report(store: VersionStore, name: str) -> Report | None:
    try:
        return store.read_report(name)
    except StoreUnavailable as error:
        log.warning("offline quality not shown: %s", error)
        return None


def read_evaluation(store: VersionStore, name: str) -> Evaluation | None:
    """None when no evaluation ran, its report cannot be read as one, or the store holding it
    does not answer (the overview goes on without the section). Read at most every
    REPORT_SECONDS per process, so a hung store delays one view, not each."""
    recent = _reports.setdefault(store, {}).setdefault(name, Recent(REPORT_SECONDS))
    stored = recent.get(lambda: _stored_report(store, name))
    if stored is None:
        return None
    try:
        report = json.loads(stored.data)
        results: dict[str, dict] = report["results"]
    except (ValueError, KeyError, TypeError):
        return None
    written_at = stored.modified.timestamp()
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
