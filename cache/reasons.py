"""Why a movie is on a user's list, in one sentence."""

from __future__ import annotations

ORDINALS = ("", "top", "second", "third")
POPULAR = "popular with everyone: your clusters have no unseen movies left"


class Reasons:
    """The reasons of one user's list: which of the user's clusters a movie came from (ranked the
    way the recommender ranked them), what that cluster is about, and, while the user has few
    ratings, that the list leans on everyone's taste because it knows little of theirs (and
    opens with movies liked by many from beyond their clusters). A list draws on a few
    clusters: each cluster's sentence is built once."""

    def __init__(
        self,
        user: dict,
        labels: dict[int, str],
        first_ratings: bool = False,
        own_clusters: int | None = None,
    ) -> None:
        """`labels`: what each cluster is called, its name or, for a version without names,
        its leading genres in brackets; `own_clusters`: how many of the user's best clusters
        the list is made of (the personal recommender's), beyond which a movie is an opening
        pick liked by many."""
        self.user, self.labels, self.first_ratings = user, labels, first_ratings
        self.own_clusters = own_clusters
        self._said: dict[int, str] = {}

    def __call__(self, cluster: int | None, source: str) -> str:
        if source != "cluster" or cluster is None:
            return POPULAR
        said = self._said.get(cluster)
        if said is None:
            said = self._said[cluster] = self._from_cluster(cluster)
        return said

    def _from_cluster(self, cluster: int) -> str:
        user = self.user
        liking = user.get("liking")
        weights = liking or user["counts"]
        rank = 1 + sum(
            w > weights[cluster] or (w == weights[cluster] and c < cluster)
            for c, w in enumerate(weights)
        )
        which = ORDINALS[rank] if rank < len(ORDINALS) else f"number {rank}"
        basis = "by how you rated its movies" if liking else "by how many of its movies you rated"
        about = self.labels.get(cluster, "(no dominant genre)")
        if self.own_clusters is not None and rank > self.own_clusters:
            reason = f"from cluster {cluster} {about}, liked by many, beyond your clusters"
        else:
            reason = f"from cluster {cluster} {about}, your {which} cluster {basis}"
        if self.first_ratings:
            return f"{reason}, from your first {user['n_ratings']} ratings"
        return reason
