"""An evaluation report as charts and as text."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.evaluation.metrics import LIST_LENGTH
from pipeline.evaluation.options import METRICS
from pipeline.evaluation.tuning import TUNING_GRID
from pipeline.plots import figures as plots


def bar_chart(report: dict, path: Path) -> None:
    """Grouped bars of a temporal report: one group per method, one bar per metric."""
    results = report["results"]
    names = list(results)
    width = 0.8 / len(METRICS)
    fig, ax = plots.figure(max(8, 1.4 * len(names)), 4.5)
    for i, metric in enumerate(METRICS):
        values = [results[name][metric] for name in names]
        ax.bar(np.arange(len(names)) + (i - (len(METRICS) - 1) / 2) * width, values, width,
               label=f"{metric}@{LIST_LENGTH}" if metric != "coverage" else metric)  # fmt: skip
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
    ax.set(ylabel="value", title=f"Top-{LIST_LENGTH} lists on held-out ratings")
    ax.legend(fontsize="small")
    plots.save(fig, path)


def cold_start_chart(report: dict, path: Path) -> None:
    """NDCG by the number of ratings the cold users kept, one line per method, the seeds'
    spread as error bars."""
    by_keep = report["cold_start"]
    fig, ax = plots.figure(9, 4.5)
    for name in report["methods"]:
        seeds = [list(part["seeds"][name].values()) for part in by_keep.values()]
        ndcg = np.array([[scores["ndcg"] for scores in row] for row in seeds])
        ax.errorbar(range(len(by_keep)), ndcg.mean(axis=1), yerr=ndcg.std(axis=1), label=name,
                    capsize=3)  # fmt: skip
    ax.set_xticks(range(len(by_keep)), list(by_keep))
    ax.set(
        xlabel="ratings a cold user kept",
        ylabel=f"NDCG@{LIST_LENGTH} (mean and spread over the draws)",
        title="Cold-start users",
    )
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1, 0.5))
    plots.save(fig, path)


def paired_text(paired: dict[str, dict]) -> str:
    return "\n".join(
        f"paired NDCG@{LIST_LENGTH} difference personal - {name}: "
        f"{d['mean']:+.4f} (standard error {d['se']:.4f}, {d['users']} users)"
        for name, d in paired.items()
    )


def seeds_text(report: dict) -> str:
    """Per K of a cold-start report: each method's NDCG per seed and their mean, then the
    paired differences pooled over the seeds."""
    blocks, seeds = [], report["protocol"]["seeds"]
    for keep, part in report["cold_start"].items():
        head = f"first {keep}, NDCG@{LIST_LENGTH} by seed"
        width = max(len(head), *map(len, part["seeds"]))
        lines = [f"{head:<{width}}" + "".join(f"{seed:>8}" for seed in [*seeds, "mean"])]
        for name, by_seed in part["seeds"].items():
            values = [by_seed[str(seed)]["ndcg"] for seed in seeds]
            lines.append(
                f"{name:<{width}}" + "".join(f"{v:>8.4f}" for v in [*values, np.mean(values)])
            )
        blocks.append("\n".join([*lines, paired_text(part["paired"])]))
    return "\n\n".join(blocks)


def tuning_text(tuning: dict) -> str:
    """The validation grid of `--tune`, one candidate a line, and its choice."""
    columns = [*TUNING_GRID, "cold_ndcg", "cold_coverage", "warm_ndcg", "allowed"]
    lines = ["".join(f"{name:>15}" for name in columns)]
    lines += ["".join(_cell(row[name]) for name in columns) for row in tuning["grid"]]
    return "\n".join([*lines, f"rule: {tuning['rule']}", f"chosen: {tuning['chosen']}"])


def _cell(value: object) -> str:
    return f"{value:>15.4f}" if isinstance(value, float) else f"{value!s:>15}"
