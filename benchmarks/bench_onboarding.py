"""The onboarding list measured offline (pipeline.evaluation.elicitation), against showing the most
popular movies and random ones, over splits drawn for this measurement only.

    python -m benchmarks.bench_onboarding [--seeds 101-110] [--write EVALUATION.md]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmarks.markdown_section import report
from pipeline.data.cleaning import clean
from pipeline.data.readers import read_dataset
from pipeline.evaluation.elicitation import METHODS, SHOWN, run_split, summarize
from pipeline.params import PipelineParams
from pipeline.settings import BUNDLED_SAMPLE

BEGIN, END = "<!-- onboarding:begin -->", "<!-- onboarding:end -->"


def seeds(text: str) -> list[int]:
    low, _, high = text.partition("-")
    return list(range(int(low), int(high or low) + 1))


def markdown(summary: dict, drawn: list[int], command: str, seconds: float) -> str:
    def cell(found: dict) -> str:
        return f"{found['mean']:.4f} ± {found['se']:.4f}"

    lines = [
        f"Command: `{command}` ({seconds:.0f} s). Splits: seeds {drawn[0]} to {drawn[-1]} "
        f"({len(drawn)}), never used while the list was made. Mean ± standard error over them.",
        "",
        "| movies shown | method | answer rate | answered none | NDCG@10 |",
        "|---|---|---|---|---|",
    ]
    for n in SHOWN:
        for method in METHODS:
            found = summary[f"{method}, {n} shown"]
            lines.append(
                f"| {n} | {method} | {cell(found['answer_rate'])} | "
                f"{cell(found['answered_none'])} | {cell(found['ndcg'])} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=BUNDLED_SAMPLE)
    parser.add_argument("--seeds", type=seeds, default=seeds("101-110"))
    parser.add_argument("--write", type=Path, help="put the results into this markdown file")
    args = parser.parse_args()
    start = time.perf_counter()
    data = clean(read_dataset(args.data))
    params = PipelineParams(plots=False)
    splits = []
    for seed in args.seeds:
        splits.append(run_split(data, params, seed))
        print(f"seed {seed}: {splits[-1]}", file=sys.stderr, flush=True)
    command = "python -m benchmarks.bench_onboarding " + " ".join(sys.argv[1:])
    body = markdown(summarize(splits), args.seeds, command.strip(), time.perf_counter() - start)
    report(body, args.write, "## Onboarding: the first movies to rate", BEGIN, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
