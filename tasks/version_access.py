"""What several tasks need of a version: its files on this host, and its catalogue, loaded once."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from cache.settings import get_store
from pipeline.artifacts import TRAINED, VersionFolder
from pipeline.lists.users import Catalog, load_catalog


def version_folder(version: str, names: Iterable[str], stage: str = TRAINED) -> VersionFolder:
    """The version's `names` on this host's disk, fetched from the store when it is remote."""
    return get_store().fetch(version, names, stage)


@lru_cache(maxsize=2)
def catalog_for(folder: VersionFolder) -> Catalog:
    """Loaded once per worker process and version, not once per chunk."""
    return load_catalog(folder)
