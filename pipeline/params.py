"""Every training parameter and its default, in one place.

A version's `metadata.json` records them; `PipelineParams.from_metadata` turns them back into
parameters, the only reader of that record, so a retrain and a chunk task agree on it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from pipeline.errors import ParameterError, check_choice

if TYPE_CHECKING:  # only for annotations: the serving side imports this module without numpy
    import numpy as np

PERSONAL = "personal"  # the user's best clusters, ranked by a folded-in personal score
FAVORITE_CLUSTER = "favorite-cluster"  # the spec's rule: the favorite cluster, Bayesian score
RECOMMENDERS = (PERSONAL, FAVORITE_CLUSTER)
# Names used by versions trained before the recommenders were named for what they do.
LEGACY_RECOMMENDERS = {"default": PERSONAL, "spec": FAVORITE_CLUSTER}
WEIGHTINGS = ("rating", "count")
ALGORITHMS = ("minibatch", "kmeans")  # the spec's MiniBatchKMeans, or full KMeans
SCALINGS = ("zscore", "minmax", "robust")  # of the numeric features and of each user's ratings
# Versions trained before lists leaned on the population's taste: a user refreshed in one of them
# gets the list its batch published.
BEFORE_PRIOR = {"prior_ratings": 0.0}
# Versions trained before the opening reached other clusters: the same, for new users' lists.
BEFORE_REACH = {"reach": 0}


@dataclass(frozen=True)
class PersonalOptions:
    """How the personal recommender picks and ranks a user's candidates.

    The last four make a list lean on what is known of everyone while the user has few ratings
    (`pipeline.lists.personal`). `prior_ratings`, `opening` and `exploration` are what `movierec
    evaluate --protocol cold-start --tune` chose on validation splits carved from training data;
    `reach` is the smallest that costs known users nothing measurable (EVALUATION.md).
    """

    user_clusters: int = 2  # clusters a user's candidates come from
    cluster_weighting: str = "rating"  # "count": the spec's most-rated rule
    damping: float = 0.3  # shrinks popular movies' large factor norms: less blockbuster-only lists
    candidates: int = 500  # per cluster, the most-rated movies that may be recommended
    prior_ratings: float = 20.0  # the population's taste counts as this many ratings; 0: ignored
    opening: int = 6  # top places given to the blended score when nothing is known of a user
    exploration: float = 0.6  # extra damping of the rest of the list then
    reach: int = 200  # per other cluster, the population's favourites the opening may draw on
    # (0: the opening stays in the user's clusters)

    def __post_init__(self) -> None:
        check_choice("cluster weighting", self.cluster_weighting, WEIGHTINGS)
        if self.user_clusters < 1 or self.candidates < 1:
            raise ParameterError("user_clusters and candidates must be at least 1")
        if min(self.prior_ratings, self.opening, self.exploration, self.reach) < 0:
            raise ParameterError("prior_ratings, opening, exploration and reach cannot be negative")

    def doubt(self, n_ratings: int | np.ndarray) -> float | np.ndarray:
        """How little n ratings (at least one) tell about a user, from 1 (nothing) towards 0:
        prior_ratings / (n + prior_ratings), the weight of the population's taste."""
        return self.prior_ratings / (n_ratings + self.prior_ratings)

    def first_ratings(self, n_ratings: int) -> bool:
        """True while the population's taste weighs more in a list than the user's own ratings:
        the list says it comes from the user's first ratings."""
        return n_ratings < self.prior_ratings


LIST_SPARE = 10


@dataclass(frozen=True)
class PipelineParams:
    k: int = 10
    algorithm: str = "minibatch"
    batch_size: int = 1000
    random_state: int = 42
    scaling: str = "zscore"
    prior_count: float = 10.0
    list_depth: int = 50
    tag_features: int = 0
    choose_k: tuple[int, ...] = ()  # when given, k is the best of these by silhouette
    plots: bool = True
    recommender: str = PERSONAL
    factors: int = 32  # size of the collaborative movie embedding (personal recommender)
    factor_weight: float = 1.0  # the embedding's weight among the clustering features
    personal: PersonalOptions = field(default_factory=PersonalOptions)

    def __post_init__(self) -> None:
        check_choice("recommender", self.recommender, RECOMMENDERS)
        if self.recommender == PERSONAL and self.factors < 1:
            raise ParameterError("the personal recommender needs at least 1 factor")

    @property
    def stored_depth(self) -> int:
        """Items kept per list: `list_depth`, the most a client may ask for, and LIST_SPARE more,
        which move up when a movie is hidden after training (lists keep their length)."""
        return self.list_depth + LIST_SPARE

    @property
    def personal_options(self) -> PersonalOptions | None:
        """The personal recommender's options; None when lists follow the favorite cluster."""
        return self.personal if self.recommender == PERSONAL else None

    def to_metadata(self, k: int) -> dict[str, Any]:
        """What `metadata.json` records: the parameters, with the k training settled on."""
        return asdict(self) | {"k": k, "choose_k": list(self.choose_k)}

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any], **overrides: Any) -> PipelineParams:
        """The parameters a version was trained with, from its metadata.json.

        Fields this code no longer has are dropped and older recommender names translated, so a
        version written by an earlier release still loads; one written before `prior_ratings`
        or `reach` existed keeps the lists it was trained with (no prior, no reach).
        """
        saved = _known_fields(cls, metadata["parameters"])
        # Versions from before the recommender was a choice used the favorite-cluster rule.
        recommender = saved.get("recommender", FAVORITE_CLUSTER)
        saved["recommender"] = LEGACY_RECOMMENDERS.get(recommender, recommender)
        personal = _known_fields(PersonalOptions, saved.get("personal", {}))
        saved["personal"] = PersonalOptions(**BEFORE_PRIOR | BEFORE_REACH | personal)
        saved["choose_k"] = tuple(saved.get("choose_k", ()))
        return cls(**saved | overrides)


def _known_fields(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    names = {item.name for item in fields(cls)}
    return {name: value for name, value in values.items() if name in names}
