"""`movierec` offline commands: download, synth, pipeline, assign."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import joblib

from pipeline import download, evaluate, synth
from pipeline.clustering import ALGORITHMS
from pipeline.errors import DataError
from pipeline.model import assign_movie
from pipeline.run import RECOMMENDERS, PipelineParams, TrainResult, run_pipeline
from pipeline.scaling import SCALERS
from pipeline.settings import data_dir, output_dir


def k_range(text: str) -> tuple[int, ...]:
    """'6-14' or '6,8,10' -> candidate cluster counts."""
    try:
        if "-" in text:
            lo, hi = (int(x) for x in text.split("-", 1))
            values = tuple(range(lo, hi + 1))
        else:
            values = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a range like 6-14, got {text!r}") from None
    if not values or min(values) < 2:
        raise argparse.ArgumentTypeError("every k must be at least 2")
    return values


def add_params(parser: argparse.ArgumentParser) -> None:
    """Flags for PipelineParams, shared by every command that trains."""
    defaults = PipelineParams()
    parser.add_argument("--k", type=int, default=defaults.k, help="number of clusters")
    parser.add_argument(
        "--choose-k",
        type=k_range,
        default=(),
        metavar="LO-HI",
        help="pick k by sampled silhouette from this range",
    )
    parser.add_argument("--algorithm", choices=ALGORITHMS, default=defaults.algorithm)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--seed", type=int, default=defaults.random_state)
    parser.add_argument("--scaling", choices=tuple(SCALERS), default=defaults.scaling)
    parser.add_argument(
        "--prior-count",
        type=float,
        default=defaults.prior_count,
        help="weight of the global mean in the ranking score",
    )
    parser.add_argument(
        "--depth", type=int, default=defaults.list_depth, help="length of each precomputed list"
    )
    parser.add_argument(
        "--tag-features",
        type=int,
        default=defaults.tag_features,
        help="TF-IDF tag terms to add to the features (0: none)",
    )
    parser.add_argument(
        "--method",
        choices=RECOMMENDERS,
        default=defaults.recommender,
        help="user lists: default (personal score in the best clusters) or spec (favorite "
        "cluster by Bayesian score)",
    )
    parser.add_argument(
        "--factors",
        type=int,
        default=defaults.factors,
        help="size of the collaborative movie embedding (default recommender)",
    )
    parser.add_argument("--no-plots", action="store_true")


def params_from(args: argparse.Namespace) -> PipelineParams:
    return PipelineParams(
        k=args.k,
        algorithm=args.algorithm,
        batch_size=args.batch_size,
        random_state=args.seed,
        scaling=args.scaling,
        prior_count=args.prior_count,
        list_depth=args.depth,
        tag_features=args.tag_features,
        choose_k=args.choose_k,
        plots=not args.no_plots,
        recommender=args.method,
        factors=args.factors,
    )


def print_stage(stage: str, fraction: float) -> None:
    print(f"[{fraction:4.0%}] {stage} ...", file=sys.stderr, flush=True)


def summary_table(result: TrainResult) -> str:
    meta = result.metadata
    rows = [(stage, f"{seconds:.2f} s") for stage, seconds in result.timings.items()]
    rows.append(("total", f"{sum(result.timings.values()):.2f} s"))
    rows += [(name, f"{count:,}") for name, count in meta["counts"].items()]
    rows += [
        ("clusters", str(meta["parameters"]["k"])),
        ("silhouette (sampled)", f"{meta['metrics']['silhouette_sampled'] or float('nan'):.3f}"),
        ("davies-bouldin", f"{meta['metrics']['davies_bouldin'] or float('nan'):.3f}"),
        ("version", result.version),
        ("artifacts", str(result.version_dir.parent.parent)),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def cmd_pipeline(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    result = run_pipeline(
        data_dir(args.data), output_dir(args.out), params_from(args), progress=print_stage
    )
    print(summary_table(result))
    print(f"wall time {time.perf_counter() - start:.2f} s", file=sys.stderr)
    return 0


def cmd_assign(args: argparse.Namespace) -> int:
    path = Path(args.model) if args.model else output_dir(args.out) / "kmeans_model.pkl"
    if not path.is_file():
        raise DataError(path, "no saved model; run `movierec pipeline` first")
    cluster = assign_movie(joblib.load(path), args.genres, args.avg_rating, args.n_ratings)
    print(cluster)
    return 0


def build_parser(description: str | None = __doc__) -> tuple[argparse.ArgumentParser, Any]:
    """The `movierec` parser with the offline commands, and its subparsers for more."""
    parser = argparse.ArgumentParser(prog="movierec", description=description)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    download.add_parser(sub)
    synth.add_parser(sub)
    evaluate.add_parser(sub)
    run = sub.add_parser("pipeline", help="clean, cluster and build every artifact")
    run.add_argument("--data", help="MovieLens folder (default: $MOVIEREC_DATA)")
    run.add_argument("--out", help="artifact folder (default: $MOVIEREC_OUTPUT or output/)")
    add_params(run)
    run.set_defaults(func=cmd_pipeline)
    assign = sub.add_parser("assign", help="place a new movie into a cluster")
    assign.add_argument("--genres", required=True, help="'|'-joined, e.g. 'Comedy|Drama'")
    assign.add_argument("--avg-rating", type=float, default=None)
    assign.add_argument("--n-ratings", type=int, default=0)
    assign.add_argument("--model", help="model file (default: OUT/kmeans_model.pkl)")
    assign.add_argument("--out", help="artifact folder")
    assign.set_defaults(func=cmd_assign)
    return parser, sub


def run_command(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse and run; known failures become one line on stderr, not a traceback."""
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (DataError, ValueError) as exc:  # download and synth report their own failures
        print(f"movierec: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
