"""The team document's `GET /recommend/user/<id>` written as it stands, as a baseline to beat.

Every worker loads the ratings and clusters_movies into pandas at start-up and filters the
ratings on each request. Errors answer 200, as in the document. Not part of the service.

    MOVIEREC_OUTPUT=OUT gunicorn 'benchmarks.spec_literal_api:create_app()'
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from flask import Flask, jsonify, request

from benchmarks.spec_literal import DTYPES


def create_app(out_dir: str | None = None) -> Flask:
    """`out_dir` is a pipeline output folder (cleaned_ratings.csv, clusters_movies.csv)."""
    out = Path(out_dir or os.environ["MOVIEREC_OUTPUT"])
    ratings = pd.read_csv(out / "cleaned_ratings.csv", dtype=DTYPES)
    clusters_movies = pd.read_csv(out / "clusters_movies.csv")
    app = Flask(__name__)

    @app.get("/recommend/user/<int:user_id>")
    def recommend_user(user_id: int):
        n = int(request.args.get("n", 5))
        user_movies = ratings[ratings.userId == user_id].merge(clusters_movies, on="movieId")
        if user_movies.empty:
            return jsonify({"error": "User not found"})
        favorite_cluster = user_movies["cluster"].value_counts().idxmax()
        picks = clusters_movies[clusters_movies.cluster == favorite_cluster].sample(n)
        return jsonify(picks[["movieId", "title"]].to_dict(orient="records"))

    return app
