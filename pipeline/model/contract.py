"""The names the saved model's ONNX graph and its reader agree on: the inputs, the output and
the metadata entry with the fitted vocabularies. Owned here, so that the exporter
(pipeline.model.export) and the loader (pipeline.model.loader) need not import each other."""

from __future__ import annotations

GENRES, AVG_RATING, N_RATINGS, TAGS = "genres", "avg_rating", "n_ratings", "tags"
FACTORS = "factors"  # the factor_* columns, as one block
CLUSTER = "cluster"  # the graph's output
VOCABULARIES = "movierec.vocabularies"  # the graph's metadata entry OnnxModel reads
