"""Model storage: joblib (uncompressed, zlib 3, zlib 9) against ONNX, on the same fitted models.

    python -m benchmarks.bench_model_storage --real ../shared/data/ml-latest-small \
        --synth /tmp/synth-25m --work /tmp/movierec-model-bench

Each data set goes through the pipeline once (no plots; reused when WORK holds its report), then
its version's model is written in every variant, each into a folder of its own with its
checksum, and loaded through `pipeline.model.loader.load_model` as the service loads it:
- cold: a fresh child process imports what the format needs, loads the file and places one
  movie (what a web process does on its first new movie); its peak RSS comes from os.wait4;
  a second child loads the model and places every catalogue movie (reading the catalogue
  with pandas, for both formats);
- warm: in this process, libraries imported and the file in the page cache (medians);
- agreement: labels of the whole catalogue against scikit-learn's (movies.parquet); movies that
  differ are listed with the relative gap between their two nearest centres.
No test asserts any of these figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version as package_version
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from benchmarks.bench_pipeline import measure
from benchmarks.machine import cpu_model, memory_gib
from pipeline import io
from pipeline.artifacts import ModelsFolder, VersionFolder
from pipeline.model.export import save_models, to_onnx
from pipeline.model.loader import assign_movie, load_model, sha256

LIBRARIES = ("numpy", "scikit-learn", "joblib", "skl2onnx", "onnx", "onnxruntime")
GENRES = "Comedy|Drama"
# name: (format, joblib compression level or ONNX dtype, written by the pipeline)
VARIANTS = {
    "joblib, uncompressed": ("joblib", 0, False),
    "joblib, zlib 3": ("joblib", 3, True),
    "joblib, zlib 9": ("joblib", 9, False),
    "ONNX, float64": ("onnx", np.float64, True),
    "ONNX, float32": ("onnx", np.float32, False),
}
# A child's own peak RSS. os.wait4's figure is no good here: Linux carries the high-water mark
# of the process that spawned the child (this one, with pandas and scikit-learn) across exec.
PEAK_RSS = """
def peak_rss_mb():
    status = open("/proc/self/status").read().split("VmHWM:")[1]
    return int(status.split()[0]) / 1024
"""
PIPELINE = f"""{PEAK_RSS}
import json, sys
from pipeline.run import PipelineParams, run_pipeline
result = run_pipeline(sys.argv[1], sys.argv[2], PipelineParams(plots=False))
print(json.dumps({{"version": result.version, "timings": result.timings,
                  "counts": result.metadata["counts"], "rss": peak_rss_mb()}}))
"""
COLD_ONE = f"""{PEAK_RSS}
import json, sys, time
start = time.perf_counter()
from pathlib import Path
from pipeline.artifacts import VersionFolder
from pipeline.model.loader import assign_movie, load_model
imported = time.perf_counter()
model = load_model(VersionFolder(Path(sys.argv[1])), sys.argv[2])
loaded = time.perf_counter()
assign_movie(model, {GENRES!r})
print(json.dumps({{"import": imported - start, "load": loaded - imported,
                  "first_movie": time.perf_counter() - loaded, "rss": peak_rss_mb()}}))
"""
COLD_ALL = f"""{PEAK_RSS}
import json, sys
from pathlib import Path
import pandas as pd
from pipeline.artifacts import VersionFolder
from pipeline.model.loader import load_model
model = load_model(VersionFolder(Path(sys.argv[1])), sys.argv[2])
model.predict(pd.read_parquet(sys.argv[3]))
print(json.dumps({{"rss": peak_rss_mb()}}))
"""
EXPORT_IMPORT = """
import json, time
import pandas, sklearn.pipeline, pipeline.features.featurizer
start = time.perf_counter()
import pipeline.model.export
print(json.dumps({"import": time.perf_counter() - start}))
"""


def median_seconds(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def trained_version(data: Path, out: Path) -> tuple[VersionFolder, dict]:
    """The data set's version folder and its pipeline report, running the pipeline if needed."""
    report_path = out / "pipeline-report.json"
    if not report_path.is_file():
        load_avg = os.getloadavg()[0]  # the machine may be shared
        report = measure([sys.executable, "-c", PIPELINE, str(data), str(out)])
        report["load_avg"] = load_avg
        report_path.write_text(json.dumps(report))
    report = json.loads(report_path.read_text())
    return ModelsFolder(out / "models").version(report["version"]), report


def write_variant(model, folder: VersionFolder, model_format: str, setting) -> Path:
    """The model in one variant, alone in a folder whose metadata records its checksum."""
    shutil.rmtree(folder.path, ignore_errors=True)
    folder.path.mkdir(parents=True)
    path = folder.model_file(model_format)
    if model_format == "joblib":
        joblib.dump(model, path, compress=setting)
    else:
        path.write_bytes(to_onnx(model, setting))
    files = {path.name: sha256(path.read_bytes())}
    io.write_json({"version": folder.version, "model_files": files}, folder.metadata)
    return path


def tie_gaps(model, catalogue: pd.DataFrame) -> np.ndarray:
    """Per movie, (second nearest - nearest) / nearest squared distance to the centres."""
    X = model[:-1].transform(catalogue)
    centres = model[-1].cluster_centers_
    squared = (X * X).sum(1)[:, None] - 2 * X @ centres.T + (centres * centres).sum(1)[None, :]
    nearest = np.sort(squared, axis=1)[:, :2]
    return (nearest[:, 1] - nearest[:, 0]) / np.maximum(nearest[:, 0], 1e-300)


def bench_variant(name: str, folder: VersionFolder, version: VersionFolder, gaps: np.ndarray):
    """One variant's figures; `version` is the trained version, for its catalogue."""
    model_format = VARIANTS[name][0]
    load_avg = os.getloadavg()[0]
    cold = measure([sys.executable, "-c", COLD_ONE, str(folder.path), model_format])
    cold_all = measure(
        [sys.executable, "-c", COLD_ALL, str(folder.path), model_format, str(version.movies)]
    )
    catalogue = pd.read_parquet(version.movies)
    model = load_model(folder, model_format)
    labels = model.predict(catalogue)
    differ = np.flatnonzero(labels != catalogue["cluster"].to_numpy())
    return {
        "variant": name,
        "bytes": folder.model_file(model_format).stat().st_size,
        "cold": cold,
        "load_avg": load_avg,
        "cold_all": cold_all,
        "warm_load": median_seconds(lambda: load_model(folder, model_format), 7),
        "one_movie": median_seconds(lambda: assign_movie(model, GENRES), 201),
        "all_movies": median_seconds(lambda: model.predict(catalogue), 5),
        "agreement": 1 - len(differ) / len(catalogue),
        "differ": [
            {
                "movieId": int(catalogue["movieId"].iat[i]),
                "title": catalogue["title"].iat[i],
                "sklearn": int(catalogue["cluster"].iat[i]),
                "got": int(labels[i]),
                "gap": float(gaps[i]),
            }
            for i in differ
        ],
    }


def bench_data(label: str, data: Path, work: Path) -> dict:
    out = work / data.name
    version, report = trained_version(data, out)
    model = load_model(version, "joblib")
    gaps = tie_gaps(model, pd.read_parquet(version.movies))
    rows = []
    for name, (model_format, setting, _) in VARIANTS.items():
        folder = VersionFolder(out / "variants" / name.replace(", ", "-").replace(" ", ""))
        write_variant(model, folder, model_format, setting)
        rows.append(bench_variant(name, folder, version, gaps))
    with tempfile.TemporaryDirectory(dir=work) as scratch:
        folder = VersionFolder(Path(scratch))
        export = {
            "to_onnx": median_seconds(lambda: to_onnx(model), 5),
            "save_models": median_seconds(lambda: save_models(folder, model), 5),
            "joblib_only": median_seconds(lambda: io.dump_joblib(model, folder.model), 5),
        }
    return {
        "data": label,
        "counts": report["counts"],
        "write_stage": report["timings"]["write"],
        "pipeline_wall": report["wall"],
        "pipeline_rss": report["rss"],
        "pipeline_load": report["load_avg"],
        "min_gap": float(gaps.min()),
        "export": export,
        "rows": rows,
    }


def machine() -> str:
    cpu, memory = cpu_model(), memory_gib()
    versions = ", ".join(f"{name} {package_version(name)}" for name in LIBRARIES)
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, Python {platform.python_version()}; "
        f"{versions}"
    )


def table(result: dict) -> str:
    counts = result["counts"]
    lines = [
        f"**{result['data']}** ({counts['ratings']:,} ratings, {counts['movies']:,} movies)",
        "",
        "| variant | size (KB) | cold: import + load + 1st movie (ms) | of which load (ms) "
        "| warm load (ms) | 1 movie (ms) | all movies (ms) | peak RSS, 1 movie (MB) "
        "| peak RSS, all movies (MB) | agreement with scikit-learn |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        cold = row["cold"]
        total = cold["import"] + cold["load"] + cold["first_movie"]
        written = " (written)" if VARIANTS[row["variant"]][2] else ""
        lines.append(
            f"| {row['variant']}{written} | {row['bytes'] / 1024:,.1f} | {total * 1e3:,.0f} "
            f"| {cold['load'] * 1e3:,.1f} | {row['warm_load'] * 1e3:,.2f} "
            f"| {row['one_movie'] * 1e3:,.3f} | {row['all_movies'] * 1e3:,.1f} "
            f"| {cold['rss']:,.0f} | {row['cold_all']['rss']:,.0f} "
            f"| {row['agreement']:.4%} ({len(row['differ'])} differ) |"
        )
    export = result["export"]
    loads = ", ".join(f"{row['load_avg']:.1f}" for row in result["rows"])
    lines += [
        "",
        f"Export: `to_onnx` {export['to_onnx'] * 1e3:.0f} ms; `save_models` (both files and "
        f"their sha256) {export['save_models'] * 1e3:.0f} ms against "
        f"{export['joblib_only'] * 1e3:.0f} ms for the joblib file alone; the pipeline's write "
        f"stage {result['write_stage']:.2f} s, its wall time {result['pipeline_wall']:.1f} s "
        f"(peak RSS {result['pipeline_rss']:,.0f} MB, load average {result['pipeline_load']:.1f}). "
        f"Closest movie to a tie: relative gap {result['min_gap']:.2e} between its two nearest "
        f"centres. 1-minute load average before each variant: {loads}.",
    ]
    for row in result["rows"]:
        for movie in row["differ"]:
            lines.append(
                f"- {row['variant']}: movie {movie['movieId']} ({movie['title']}) gets "
                f"{movie['got']}, scikit-learn {movie['sklearn']}; relative gap "
                f"{movie['gap']:.1e}"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, nargs="*", default=[], metavar="DIR")
    parser.add_argument(
        "--synth",
        type=Path,
        nargs="*",
        default=[],
        metavar="DIR",
        help="`movierec synth` output, e.g. from --ratings 25000000 --out /tmp/synth-25m",
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/movierec-model-bench"))
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    data = [(folder.name, folder) for folder in args.real]
    data += [(f"synthetic ({folder.name})", folder) for folder in args.synth]
    skl2onnx_import = measure([sys.executable, "-c", EXPORT_IMPORT])["import"]
    results = [bench_data(label, folder, args.work) for label, folder in data]
    print(f"Command: `python -m benchmarks.bench_model_storage {' '.join(sys.argv[1:])}`\n")
    print(f"Machine: {machine()}\n")
    print(f"Importing skl2onnx after scikit-learn (once per pipeline run): {skl2onnx_import:.2f} s")
    for result in results:
        print(f"\n{table(result)}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
