"""Redis key layout: one namespace per model version plus a few global pointers.

Every key of a version lives under `movierec:v:<version>:`, so a version is written completely
before the `movierec:active` pointer names it, and deleted with one pattern scan afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.artifacts import check_version

PREFIX = "movierec"
VERSIONS = f"{PREFIX}:v:"  # + "<version>:<part>": every key of one version
# The parts of a version: `VersionKeys.key(part)`, or the reader's one-round-trip script.
META, MOVIES, SIMILAR, USERS, CLUSTERS, POPULAR, MAP, ONBOARDING = (
    "meta",
    "movies",
    "similar",
    "users",
    "clusters",
    "popular",
    "map",
    "onboarding",
)
ACTIVE = f"{PREFIX}:active"
PREVIOUS = f"{PREFIX}:previous"
STAGING = f"{PREFIX}:staging"  # zset: version -> time staging started
RETIRED = f"{PREFIX}:retired"  # zset: version -> time it stopped being active or previous
RETRAIN_LOCK = f"{PREFIX}:lock:retrain"
JOBS = f"{PREFIX}:jobs"  # zset: job id -> time submitted, the newest JOBS_KEPT of them
WORKERS = f"{PREFIX}:workers"  # zset: worker hostname -> time of its last heartbeat
BEAT_LAST_TICK = f"{PREFIX}:beat:last_tick"  # time beat last started or sent a task
STORE_METRICS = f"{PREFIX}:metrics:store"  # hash: "operations|<op>|<outcome>", "bytes|<dir>"
JOB_METRICS = f"{PREFIX}:metrics:jobs"  # hash: "<kind>|<outcome>|<field>" -> count or seconds
# The operator's changes to movies, outside every version so that a publish or a rollback keeps
# them: hash movieId -> JSON {hidden, title, genres} as PostgreSQL holds them; hash movieId ->
# JSON {version, cluster, similar, scores}: the place a changed movie's genres give it in that
# version; a counter bumped by every change, which readers compare to reread only then.
MOVIE_CHANGES = f"{PREFIX}:movies:changes"
MOVIE_PLACES = f"{PREFIX}:movies:places"
MOVIE_CHANGES_EPOCH = f"{PREFIX}:movies:epoch"


def job_key(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}"


def job_pattern() -> str:
    return f"{PREFIX}:job:*"


def celery_result_key(job_id: str) -> str:
    """Where Celery's Redis result backend keeps a task's state and result."""
    return f"celery-task-meta-{job_id}"


def refresh_queued_key(user_id: int) -> str:
    """Holds the id of a refresh job queued for the user and not started yet."""
    return f"{PREFIX}:refresh:queued:{user_id}"


def refresh_lock_key(user_id: int) -> str:
    """Held by the one refresh of the user that runs."""
    return f"{PREFIX}:refresh:lock:{user_id}"


def members_part(cluster: int) -> str:
    return f"members:{cluster}"


@dataclass(frozen=True)
class VersionKeys:
    version: str

    def __post_init__(self) -> None:
        check_version(self.version)

    @property
    def namespace(self) -> str:
        return f"{VERSIONS}{self.version}"

    def key(self, part: str) -> str:
        return f"{self.namespace}:{part}"

    @property
    def pattern(self) -> str:
        return f"{self.namespace}:*"

    @property
    def meta(self) -> str:
        """JSON: metadata.json plus counts, list depth and the version folder."""
        return self.key(META)

    @property
    def movies(self) -> str:
        """Hash movieId -> JSON {title, genres, cluster, score, n_ratings, avg_rating}."""
        return self.key(MOVIES)

    @property
    def similar(self) -> str:
        """Hash movieId -> JSON {movies: [similarId, ...], scores: [...]} ranked."""
        return self.key(SIMILAR)

    @property
    def users(self) -> str:
        """Hash userId -> JSON {favorite_cluster, n_ratings, counts, liking (default recommender),
        movies, scores, sources}."""
        return self.key(USERS)

    @property
    def clusters(self) -> str:
        """JSON list of cluster summaries (cluster_summary.json)."""
        return self.key(CLUSTERS)

    @property
    def popular(self) -> str:
        """JSON list of movieIds, most popular first."""
        return self.key(POPULAR)

    @property
    def onboarding(self) -> str:
        """JSON list of movieIds a new user is asked to rate, in order."""
        return self.key(ONBOARDING)

    @property
    def cluster_map(self) -> str:
        """JSON list of [movieId, x, y, cluster]: sampled movies in 2-D, for the dashboard."""
        return self.key(MAP)

    def members(self, cluster: int) -> str:
        """JSON list of the cluster's movieIds, best score first."""
        return self.key(members_part(cluster))
