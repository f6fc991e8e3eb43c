"""The team document's `GET /recommend/user/{user_id}` served the way the document serves it:
FastAPI under one uvicorn process, pandas per request. A baseline to beat, not part of the service.

The process loads the ratings and clusters_movies into pandas at start-up and filters the
ratings on each request. Errors answer 200, as in the document. Needs the `bench` extra
(`pip install -e '.[bench]'`):

    MOVIEREC_OUTPUT=OUT uvicorn --factory benchmarks.spec_literal_fastapi:create_app
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from fastapi import FastAPI

from benchmarks.spec_literal import DTYPES


def create_app(out_dir: str | None = None) -> FastAPI:
    """`out_dir` is a pipeline output folder (cleaned_ratings.csv, clusters_movies.csv)."""
    out = Path(out_dir or os.environ["MOVIEREC_OUTPUT"])
    ratings = pd.read_csv(out / "cleaned_ratings.csv", dtype=DTYPES)
    clusters_movies = pd.read_csv(out / "clusters_movies.csv")
    app = FastAPI()

    @app.get("/recommend/user/{user_id}")
    def recommend_user(user_id: int, n: int = 5):
        user_movies = ratings[ratings.userId == user_id].merge(clusters_movies, on="movieId")
        if user_movies.empty:
            return {"error": "User not found"}
        favorite_cluster = user_movies["cluster"].value_counts().idxmax()
        picks = clusters_movies[clusters_movies.cluster == favorite_cluster].sample(n)
        return picks[["movieId", "title"]].to_dict(orient="records")

    return app
