"""Where data and artifacts live, from flags or the environment: the one rule every command uses.

The MovieLens folder to train on is, in order: `--data`, `MOVIEREC_DATA`, the ml-latest-small
sample beside the repository (`../shared/data`), the sample downloaded once into
`output/data/`, or, when none of these exists, that sample downloaded now.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from pipeline.artifacts import OutputFolder
from pipeline.errors import MovierecError

REPO = Path(__file__).resolve().parents[1]
SAMPLE = "ml-latest-small"
BUNDLED_SAMPLE = REPO.parent / "shared" / "data" / SAMPLE
N = TypeVar("N", int, float)
DOWNLOAD_URL_VARIABLE = "MOVIEREC_DOWNLOAD_URL"  # a mirror of GroupLens's dataset folder


class SettingsError(MovierecError, ValueError):
    """An environment variable holds a value the service cannot use."""


def env_number(
    env: Mapping[str, str],
    name: str,
    default: N,
    kind: Callable[[str], N],
    zero: bool = False,
    error: type[SettingsError] = SettingsError,
) -> N:
    """`name` read as `kind` (int or float): positive, or >= 0 with `zero`; unset: `default`."""
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise error(f"{name}={raw!r} is not {what}") from None
    if value < 0 or (value == 0 and not zero):
        raise error(f"{name}={raw!r} must be {'>= 0' if zero else 'positive'}")
    return value


class SampleUnavailable(MovierecError):
    """No data folder is configured and the sample could not be downloaded."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"no MovieLens data to train on, and the {SAMPLE} sample could not be downloaded: "
            f"{reason}\nTo fix it, on a machine with network access run\n"
            f"    movierec download --dataset {SAMPLE} --to DIR\n"
            f"copy DIR/{SAMPLE} to this machine, then\n"
            f"    export MOVIEREC_DATA=/path/to/{SAMPLE}\n"
            f"(or pass --data /path/to/{SAMPLE})."
        )


def output_dir(flag: str | None = None) -> Path:
    """--out, else MOVIEREC_OUTPUT, else output/ in the repository."""
    return Path(flag or os.environ.get("MOVIEREC_OUTPUT") or REPO / "output")


def find_data_dir(chosen: str | None, out_dir: Path) -> Path | None:
    """The configured folder, else a sample already on disk; None when there is none yet."""
    if chosen:
        return Path(chosen)
    if BUNDLED_SAMPLE.is_dir():
        return BUNDLED_SAMPLE
    from pipeline.data.download import is_complete

    downloaded = OutputFolder(out_dir).data / SAMPLE
    return downloaded if is_complete(downloaded) else None


def fetch_sample(out_dir: Path, say: Callable[[str], None]) -> Path:
    """Download the sample into output/data/ (checksum pinned, unpacked atomically)."""
    from pipeline.data.download import BASE_URL, DownloadError, archive_url, download_dataset

    base_url = os.environ.get(DOWNLOAD_URL_VARIABLE) or BASE_URL
    try:
        result = download_dataset(SAMPLE, OutputFolder(out_dir).data, base_url)
    except DownloadError as error:
        raise SampleUnavailable(str(error)) from None
    if result.fetched:
        say(
            f"downloaded the MovieLens {SAMPLE} sample (GroupLens; cite it, see README) from "
            f"{archive_url(SAMPLE, base_url)} into {result.path}, once: later runs use this copy"
        )
    return result.path


def data_on_disk(flag: str | None = None, out_flag: str | None = None) -> Path | None:
    """The folder to train on by the rule above, without downloading; None when there is none."""
    return find_data_dir(flag or os.environ.get("MOVIEREC_DATA"), output_dir(out_flag))


def data_dir(flag: str | None, out_flag: str | None, say: Callable[[str], None]) -> Path:
    """The folder to train on by the rule above, downloading the sample when there is none."""
    return data_on_disk(flag, out_flag) or fetch_sample(output_dir(out_flag), say)
