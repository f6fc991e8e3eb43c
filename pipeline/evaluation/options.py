"""Offline evaluation: hide some ratings, train on the rest, score top-10 lists.

Two protocols. temporal (the default): per user, ratings ordered by time (ties by movie id);
the latest 20%, at least one, are held out and the rest trains the whole pipeline. cold-start:
a fifth of the users, drawn with a seed, keep only their first K ratings by time for training
(K = 3, 5, 10, 20), the rest of their ratings are held out, everyone else trains on everything,
and only those users are scored; each K is run for several seeds of that draw.

A held-out rating of 4.0 or more is relevant; users with nothing relevant are skipped. Lists
hold 10 movies the user did not rate in training. The service's lists come from the pipeline
trained on the training split and `pipeline.lists.users.recommend_users`: the code the pipeline, the
chunk workers and the live refresh run, not a re-implementation of it.

`--tune` chooses the personal recommender's prior_ratings, opening and exploration on
validation splits carved from training data only (never the scored users' held-out ratings).
"""

from __future__ import annotations

TEMPORAL, COLD_START = "temporal", "cold-start"
PROTOCOLS = (TEMPORAL, COLD_START)
FIRST_RATINGS = (3, 5, 10, 20)  # the K of the cold-start protocol: ratings a drawn user keeps
SEEDS = 5  # draws of the cold-start users
METRICS = ("precision", "recall", "ndcg", "hit_rate", "coverage")
# The baselines scored beside the service's recommenders (`evaluation.baselines.BASELINES`).
BASELINE_NAMES = ("random", "popular", "spec-random", "cluster-popular", "svd")
