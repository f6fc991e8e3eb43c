"""What several tasks need of a version folder: where it is, and its catalogue, loaded once."""

from __future__ import annotations

from functools import lru_cache

from cache.settings import get_settings
from pipeline.artifacts import VersionFolder
from pipeline.users import Catalog, load_catalog


def version_folder(version: str) -> VersionFolder:
    return get_settings().output.models.version(version)


@lru_cache(maxsize=2)
def catalog_for(folder: VersionFolder) -> Catalog:
    """Loaded once per worker process and version, not once per chunk."""
    return load_catalog(folder)
