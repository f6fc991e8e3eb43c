"""The movies a new user is asked to rate first: from every cluster in turn, its well-known
and divisive movies (many ratings, widely spread), not the most popular ones, which nearly
everyone likes and so tell little apart. MovieLens greets its new members the same way."""

from __future__ import annotations

import numpy as np
import pandas as pd

KNOWN_SHARE = 0.03  # well known: in the most rated 3% of its cluster (tuned on seeds 1 to 3)


def onboarding_list(movies: pd.DataFrame, ratings: pd.DataFrame, depth: int) -> pd.DataFrame:
    """`depth` movies ranked 1..depth: the best of each cluster (largest clusters first), then
    the second best of each, and so on. Best: log(ratings) times the ratings' spread."""
    spread = ratings.groupby("movieId")["rating"].std().rename("spread")
    known = movies[["movieId", "cluster", "n_ratings"]].join(spread, on="movieId").fillna(0.0)
    floor = known.groupby("cluster")["n_ratings"].transform(lambda n: n.quantile(1 - KNOWN_SHARE))
    known = known[(known["n_ratings"] >= floor) & (known["n_ratings"] > 1)]
    known = known.assign(score=np.log1p(known["n_ratings"]) * known["spread"])
    known = known.sort_values(["score", "movieId"], ascending=[False, True], kind="stable")
    known["turn"] = known.groupby("cluster").cumcount()
    sizes = movies["cluster"].value_counts()
    known["size"] = -known["cluster"].map(sizes)
    chosen = known.sort_values(["turn", "size", "cluster"], kind="stable").head(depth)
    return pd.DataFrame(
        {
            "rank": np.arange(1, len(chosen) + 1, dtype=np.int32),
            "movieId": chosen["movieId"].to_numpy(),
            "cluster": chosen["cluster"].to_numpy(np.int32),
        }
    )
