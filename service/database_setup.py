"""Where the database comes from (MOVIEREC_DATABASE_URL, else the embedded server) and its first
import, shared by `movierec up` and `movierec db import`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from cache.settings import Settings
from db.database import database
from db.writes import has_movies
from pipeline.settings import fetch_sample

if TYPE_CHECKING:
    from pipeline.run import Loader


def import_folder(url: str, data: Path, out_dir: Path, say: Callable[[str], None]) -> None:
    from db.importer import import_folder as merge_folder

    say(f"importing {data} into the database ...")
    with database(url).connection() as conn:
        report = merge_folder(conn, data, out_dir)
    read, written = report.read, report.written
    say(
        f"imported {read['movies']:,} movies, {read['ratings']:,} ratings, {read['tags']:,} tags"
        f" ({written['movies']:,}, {written['ratings']:,} and {written['tags']:,} new or"
        f" changed; {report.users_changed:,} users changed)"
    )


def import_if_empty(url: str, settings: Settings, say: Callable[[str], None]) -> None:
    """A first start: load the data folder by the usual rule, downloading the sample if need be."""
    with database(url).connection() as conn:
        if has_movies(conn):
            return
    data = settings.data_dir or fetch_sample(settings.out_dir, say)
    import_folder(url, data, settings.out_dir, say)


def training_source(settings: Settings, say: Callable[[str], None]) -> Path | Loader:
    """What a first training reads: the database (filled first if empty), else the data folder."""
    if settings.database_url:
        import_if_empty(settings.database_url, settings, say)
        from db.snapshot import database_loader

        return database_loader(settings.database_url)
    return settings.data_dir or fetch_sample(settings.out_dir, say)
