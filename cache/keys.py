"""Redis key layout: one namespace per model version plus a few global pointers.

Every key of a version lives under `movierec:v:<version>:`, so a version is written completely
before the `movierec:active` pointer names it, and deleted with one pattern scan afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.artifacts import check_version

PREFIX = "movierec"
ACTIVE = f"{PREFIX}:active"
PREVIOUS = f"{PREFIX}:previous"
STAGING = f"{PREFIX}:staging"  # zset: version -> time staging started
RETIRED = f"{PREFIX}:retired"  # zset: version -> time it stopped being active or previous
RETRAIN_LOCK = f"{PREFIX}:lock:retrain"


def job_key(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}"


def refresh_queued_key(user_id: int) -> str:
    """Holds the id of a refresh job queued for the user and not started yet."""
    return f"{PREFIX}:refresh:queued:{user_id}"


def refresh_lock_key(user_id: int) -> str:
    """Held by the one refresh of the user that runs."""
    return f"{PREFIX}:refresh:lock:{user_id}"


@dataclass(frozen=True)
class VersionKeys:
    version: str

    def __post_init__(self) -> None:
        check_version(self.version)

    @property
    def namespace(self) -> str:
        return f"{PREFIX}:v:{self.version}"

    @property
    def pattern(self) -> str:
        return f"{self.namespace}:*"

    @property
    def meta(self) -> str:
        """JSON: metadata.json plus counts, list depth and the version folder."""
        return f"{self.namespace}:meta"

    @property
    def movies(self) -> str:
        """Hash movieId -> JSON {title, genres, cluster, score, n_ratings, avg_rating}."""
        return f"{self.namespace}:movies"

    @property
    def similar(self) -> str:
        """Hash movieId -> JSON {movies: [similarId, ...], scores: [...]} ranked."""
        return f"{self.namespace}:similar"

    @property
    def users(self) -> str:
        """Hash userId -> JSON {favorite_cluster, n_ratings, counts, liking (default recommender),
        movies, scores, sources}."""
        return f"{self.namespace}:users"

    @property
    def clusters(self) -> str:
        """JSON list of cluster summaries (cluster_summary.json)."""
        return f"{self.namespace}:clusters"

    @property
    def popular(self) -> str:
        """JSON list of movieIds, most popular first."""
        return f"{self.namespace}:popular"

    def members(self, cluster: int) -> str:
        """JSON list of the cluster's movieIds, best score first."""
        return f"{self.namespace}:members:{cluster}"
