"""The offline commands: download, synth, pipeline, assign, evaluate.

They use pandas and scikit-learn, so the serving commands never import this module; and each
handler imports the modules its command needs, so building the parser loads none of them and
`movierec pipeline` loads neither the evaluation nor the synthesizer.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.artifacts import DEFAULT_MODEL_FORMAT, MODEL_FORMATS, OutputFolder, VersionFolder
from pipeline.data import download
from pipeline.errors import DataError
from pipeline.evaluation.options import (
    BASELINE_NAMES,
    COLD_START,
    FIRST_RATINGS,
    METRICS,
    PROTOCOLS,
    SEEDS,
    TEMPORAL,
)
from pipeline.evaluation.options import __doc__ as EVALUATE_DOC
from pipeline.params import ALGORITHMS, RECOMMENDERS, SCALINGS, PipelineParams
from pipeline.process.collector import collector_paused
from pipeline.settings import data_dir, output_dir

if TYPE_CHECKING:
    from pipeline.run import TrainResult
    from store.versions import VersionStore


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


def rating_count(text: str) -> int:
    from pipeline.data import synth

    value = int(text)
    if value < synth.MIN_RATINGS_PER_USER:
        raise argparse.ArgumentTypeError(f"must be at least {synth.MIN_RATINGS_PER_USER}")
    return value


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
    parser.add_argument("--scaling", choices=SCALINGS, default=defaults.scaling)
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
        "--recommender",
        choices=RECOMMENDERS,
        default=defaults.recommender,
        help="user lists: personal (a personal score in the user's best clusters) or "
        "favorite-cluster (the spec's rule: the favorite cluster by Bayesian score)",
    )
    parser.add_argument(
        "--factors",
        type=int,
        default=defaults.factors,
        help="size of the collaborative movie embedding (personal recommender)",
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
        recommender=args.recommender,
        factors=args.factors,
    )


def say(message: str) -> None:
    print(f"movierec: {message}", file=sys.stderr, flush=True)


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
        ("artifacts", str(result.folder.path.parent.parent)),
    ]
    return _columns(rows)


def _columns(rows: list[tuple[str, str]]) -> str:
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def metrics_table(rows: dict[str, dict]) -> str:
    width = max(len("method"), *map(len, rows))
    head = f"{'method':<{width}}" + "".join(f"{m:>10}" for m in METRICS)
    lines = [head, "-" * len(head)]
    lines += [
        f"{name:<{width}}" + "".join(f"{row[m]:>10.4f}" for m in METRICS)
        for name, row in rows.items()
    ]
    return "\n".join(lines)


def cmd_pipeline(args: argparse.Namespace) -> int:
    with collector_paused():
        from pipeline.run import run_pipeline

    from store.versions import store_for_output

    start = time.perf_counter()
    out = output_dir(args.out)
    store = store_for_output(out)
    data = data_dir(args.data, args.out, say)
    previous = latest_clusters(store)  # its cluster ids and names carry over
    result = run_pipeline(data, out, params_from(args), print_stage, previous=previous)
    store.commit(result.folder)
    print(summary_table(result))
    print(f"wall time {time.perf_counter() - start:.2f} s", file=sys.stderr)
    return 0


def latest_clusters(store: VersionStore) -> VersionFolder | None:
    """The newest complete version's movies and cluster summary, when the store has one."""
    latest = store.latest()
    if latest is None:
        return None
    return store.fetch(latest, (*VersionFolder.CATALOG, VersionFolder.SUMMARY))


def cmd_assign(args: argparse.Namespace) -> int:
    from pipeline.artifacts import TRAINED, VersionFolder
    from pipeline.model.loader import assign_movie, load_model
    from store.versions import store_for_output

    store = store_for_output(output_dir(args.out))
    version = args.version or store.latest()
    if version is None:
        raise DataError(store.url, "no saved model; run `movierec pipeline` first")
    names = (VersionFolder.METADATA, VersionFolder.MODEL_FILES[args.format])
    model = load_model(store.fetch(version, names, TRAINED), args.format)
    print(assign_movie(model, args.genres, args.avg_rating, args.n_ratings))
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    result = download.download_dataset(args.dataset, args.to, args.base_url)
    state = "downloaded and verified" if result.fetched else "already present and complete"
    print(f"{args.dataset}: {state} in {result.path}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from pipeline.data import synth

    try:
        data = synth.synthesize(args.ratings, args.out, args.seed)
    except OSError as exc:
        raise DataError(args.out, f"cannot write: {exc.strerror or exc}") from None
    print(
        f"wrote {data.ratings.num_rows:,} ratings by "
        f"{synth.Shape.for_ratings(args.ratings).users:,} users on {len(data.movies):,} movies "
        f"and {data.tags.num_rows:,} tags to {args.out}"
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from pipeline.evaluation.reports import (
        bar_chart,
        cold_start_chart,
        paired_text,
        seeds_text,
        tuning_text,
    )
    from pipeline.evaluation.runs import run_cold_start, run_evaluation
    from pipeline.io import write_json
    from store.versions import store_for_output

    source, baselines = data_dir(args.data, args.out, say), args.baseline or BASELINE_NAMES
    if args.protocol == COLD_START:
        report = run_cold_start(
            source, baselines, args.seed, args.first_ratings, args.seeds, args.ablation, args.tune
        )
        for keep, part in report["cold_start"].items():
            print(f"\nfirst {keep} ratings, mean over {args.seeds} seeds")
            print(metrics_table(part["results"]))
            if args.ablation:
                print(metrics_table({row["step"]: row for row in part["ablation"]}))
        print(f"\n{seeds_text(report)}")
    else:
        report = run_evaluation(source, baselines, args.seed, args.ablation, args.tune)
        print(metrics_table(report["results"]))
        print(paired_text(report["paired"]))
        if args.ablation:
            print()
            print(metrics_table({row["step"]: row for row in report["ablation"]}))
    if args.tune:
        print(f"\n{tuning_text(report['tuning'])}")
    out = OutputFolder(output_dir(args.out))
    cold = args.protocol == COLD_START
    path = out.cold_start_evaluation if cold else out.evaluation
    write_json(report, path)
    store_for_output(out.path).put_report(path)  # what the dashboard shows, on every web host
    if not args.no_plot:
        chart = cold_start_chart if cold else bar_chart
        chart(report, out.cold_start_evaluation_plot if cold else out.evaluation_plot)
    print(
        f"{report['counts']['users_evaluated']} users evaluated in {report['seconds']:.2f} s; "
        f"wrote {path}"
    )
    return 0


def cmd_db_import(args: argparse.Namespace) -> int:
    from cache.settings import get_settings
    from service.database_setup import import_folder
    from service.embedded_postgres import running_postgres

    out = output_dir(args.out)
    data = data_dir(args.data, args.out, say)
    url = get_settings().database_url
    if url:
        import_folder(url, data, out, say)
        return 0
    say(f"no MOVIEREC_DATABASE_URL: using the embedded server in {OutputFolder(out).postgres}")
    with running_postgres(OutputFolder(out).postgres) as embedded:
        import_folder(embedded, data, out, say)
    return 0


def add_offline_commands(sub: argparse._SubParsersAction) -> None:
    fetch = sub.add_parser(
        "download",
        help="fetch a MovieLens release from GroupLens",
        description="Download a MovieLens archive, verify its md5 and unpack it to DIR/<name>.",
    )
    fetch.add_argument("--dataset", required=True, choices=list(download.DATASETS))
    fetch.add_argument("--to", required=True, type=Path, metavar="DIR")
    fetch.add_argument(
        "--base-url", default=download.BASE_URL, metavar="URL", help="mirror serving <name>.zip"
    )
    fetch.set_defaults(func=cmd_download)

    make = sub.add_parser(
        "synth",
        help="write MovieLens-shaped synthetic data",
        description="Generate movies.csv, ratings.csv and tags.csv in the ml-latest layout.",
    )
    make.add_argument("--ratings", required=True, type=rating_count, metavar="N")
    make.add_argument("--out", required=True, type=Path, metavar="DIR")
    make.add_argument("--seed", type=int, default=PipelineParams().random_state)
    make.set_defaults(func=cmd_synth)

    score = sub.add_parser(
        "evaluate",
        help="score top-10 lists of the recommenders and baselines on held-out ratings",
        description=EVALUATE_DOC,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    score.add_argument("--data", help="MovieLens folder (default: $MOVIEREC_DATA)")
    score.add_argument("--out", help="where evaluation.json and plots/ go (default: output/)")
    score.add_argument(
        "--baseline",
        action="append",
        choices=BASELINE_NAMES,
        help="a baseline to score beside the service's recommenders; repeat for several "
        "(default: all)",
    )
    score.add_argument(
        "--ablation", action="store_true", help="also score the personal recommender step by step"
    )
    score.add_argument(
        "--seed",
        type=int,
        default=PipelineParams().random_state,
        help="seed of the pipeline and of the random baselines; the cold-start draws use it "
        "and the next ones",
    )
    score.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default=TEMPORAL,
        help="temporal: every user's latest ratings are held out; cold-start: drawn users keep "
        "only their first ratings",
    )
    score.add_argument(
        "--first-ratings",
        type=int,
        nargs="+",
        default=FIRST_RATINGS,
        metavar="K",
        help="cold-start: the ratings a drawn user keeps, one run per K",
    )
    score.add_argument(
        "--seeds", type=int, default=SEEDS, metavar="N", help="cold-start: draws of the users"
    )
    score.add_argument(
        "--tune",
        action="store_true",
        help="also choose the personal recommender's prior_ratings, opening and exploration "
        "on validation splits of the training data",
    )
    score.add_argument("--no-plot", action="store_true")
    score.set_defaults(func=cmd_evaluate)

    database = sub.add_parser("db", help="the database: import a MovieLens folder")
    actions = database.add_subparsers(dest="action", required=True, metavar="ACTION")
    load = actions.add_parser(
        "import",
        help="clean a MovieLens folder and merge it into the database (idempotent)",
        description="Read and clean a MovieLens folder as `movierec pipeline` does, write the "
        "cleaning report, and merge movies, ratings and tags into MOVIEREC_DATABASE_URL (else "
        "the embedded server in OUT/postgres). Importing the same folder again changes nothing.",
    )
    load.add_argument("--data", help="MovieLens folder (default: $MOVIEREC_DATA or the sample)")
    load.add_argument("--out", help="artifact folder (default: $MOVIEREC_OUTPUT or output/)")
    load.set_defaults(func=cmd_db_import)

    run = sub.add_parser("pipeline", help="clean, cluster and build every artifact")
    run.add_argument("--data", help="MovieLens folder (default: $MOVIEREC_DATA)")
    run.add_argument("--out", help="artifact folder (default: $MOVIEREC_OUTPUT or output/)")
    add_params(run)
    run.set_defaults(func=cmd_pipeline)

    assign = sub.add_parser("assign", help="place a new movie into a cluster")
    assign.add_argument("--genres", required=True, help="'|'-joined, e.g. 'Comedy|Drama'")
    assign.add_argument("--avg-rating", type=float, default=None)
    assign.add_argument("--n-ratings", type=int, default=0)
    assign.add_argument("--version", help="model version (default: the newest complete one)")
    assign.add_argument(
        "--format",
        choices=MODEL_FORMATS,
        default=DEFAULT_MODEL_FORMAT,
        help=f"which of the version's model files to load (default: {DEFAULT_MODEL_FORMAT}); "
        "both give the same clusters",
    )
    assign.add_argument("--out", help="artifact folder")
    assign.set_defaults(func=cmd_assign)
