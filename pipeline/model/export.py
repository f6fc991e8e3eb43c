"""The fitted model as an ONNX graph, built with skl2onnx, in double precision by default.

skl2onnx cannot convert the custom MovieFeaturizer, so the graph is assembled from its fitted
parts in the order `MovieFeaturizer.transform` stacks them: the genre one-hot (an input), the
rating's NaN fill and the log count through the fitted scaler (skl2onnx's converter), tag
TF-IDF (counts times idf, to unit length, weighted), the factors (to unit length, weighted), and
the clusterer (skl2onnx's converter). The inputs that come from strings, the genre one-hot and
the tag counts, are made by `model.loader.OnnxModel` from the vocabularies saved in the graph's
metadata. In float32 a movie near the boundary of two clusters can change sides; in float64 the
labels are scikit-learn's (BENCHMARKS.md, *Model storage*).
"""

from __future__ import annotations

import json

import numpy as np
import onnx
from skl2onnx.algebra.onnx_operator import OnnxOperator, OnnxSubEstimator
from skl2onnx.algebra.onnx_ops import (
    OnnxAdd,
    OnnxConcat,
    OnnxDiv,
    OnnxGreater,
    OnnxIdentity,
    OnnxIsNaN,
    OnnxLog,
    OnnxMul,
    OnnxReduceSumSquareApi18,
    OnnxSqrt,
    OnnxWhere,
)
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, Int64TensorType
from sklearn.pipeline import Pipeline

from pipeline.artifacts import MODEL_FORMATS, VersionFolder
from pipeline.features.featurizer import MovieFeaturizer
from pipeline.model.contract import (
    AVG_RATING,
    CLUSTER,
    FACTORS,
    GENRES,
    N_RATINGS,
    TAGS,
    VOCABULARIES,
)
from pipeline.model.loader import sha256

OPSET = 18  # every onnxruntime the project accepts (pyproject.toml) runs it
TENSORS = {np.float64: DoubleTensorType, np.float32: FloatTensorType}

Node = OnnxOperator | str  # an operator's output, or an input by name


def to_onnx(model: Pipeline, dtype: type = np.float64) -> bytes:
    """The serialized graph: movies' feature inputs in, each movie's cluster out."""
    featurizer, clusterer = model[0], model[-1]
    tensor = TENSORS[dtype]
    inputs = [
        (GENRES, tensor([None, len(featurizer.genres_)])),
        (AVG_RATING, tensor([None, 1])),
        (N_RATINGS, tensor([None, 1])),
    ]
    blocks = [GENRES, _numeric(featurizer, dtype)]
    if featurizer.tfidf_ is not None:
        inputs.append((TAGS, tensor([None, len(featurizer.tfidf_.vocabulary_)])))
        tfidf = OnnxMul(TAGS, featurizer.tfidf_.idf_.astype(dtype), op_version=OPSET)
        blocks.append(_weighted_unit_rows(tfidf, featurizer.tag_weight, dtype))
    if featurizer.factors_:
        inputs.append((FACTORS, tensor([None, len(featurizer.factors_)])))
        blocks.append(_weighted_unit_rows(FACTORS, featurizer.factor_weight, dtype))
    features = OnnxConcat(*blocks, axis=1, op_version=OPSET)
    labels = OnnxSubEstimator(clusterer, features, op_version=OPSET)[0]
    graph = OnnxIdentity(labels, output_names=[CLUSTER], op_version=OPSET)
    proto = graph.to_onnx(inputs, outputs=[(CLUSTER, Int64TensorType([None]))], target_opset=OPSET)
    onnx.helper.set_model_props(proto, {VOCABULARIES: json.dumps(_vocabularies(featurizer))})
    return proto.SerializeToString()


def _numeric(featurizer: MovieFeaturizer, dtype: type) -> OnnxOperator:
    """Unrated movies take the fill rating; counts become log(1 + n); then the fitted scaler."""
    fill = np.array([[featurizer.rating_fill_]], dtype)
    unrated = OnnxIsNaN(AVG_RATING, op_version=OPSET)
    rating = OnnxWhere(unrated, fill, AVG_RATING, op_version=OPSET)
    count = OnnxLog(OnnxAdd(N_RATINGS, np.ones((1, 1), dtype), op_version=OPSET), op_version=OPSET)
    both = OnnxConcat(rating, count, axis=1, op_version=OPSET)
    return OnnxSubEstimator(featurizer.scaler_, both, op_version=OPSET)


def _weighted_unit_rows(block: Node, weight: float, dtype: type) -> OnnxOperator:
    """Each row divided by its length (rows of zeros stay zeros), times `weight`."""
    zero = np.zeros(1, dtype)
    squares = OnnxReduceSumSquareApi18(block, axes=[1], keepdims=1, op_version=OPSET)
    norm = OnnxSqrt(squares, op_version=OPSET)
    unit = OnnxDiv(block, norm, op_version=OPSET)
    nonzero = OnnxGreater(norm, zero, op_version=OPSET)
    rows = OnnxWhere(nonzero, unit, zero, op_version=OPSET)
    return OnnxMul(rows, np.array([weight], dtype), op_version=OPSET)


def _vocabularies(featurizer: MovieFeaturizer) -> dict:
    """What OnnxModel needs to turn strings into the graph's inputs."""
    tfidf = featurizer.tfidf_
    tags = [] if tfidf is None else sorted(tfidf.vocabulary_, key=tfidf.vocabulary_.get)
    return {
        "genres": [str(genre) for genre in featurizer.genres_],
        "tags": tags,
        "tag_pattern": None if tfidf is None else tfidf.token_pattern,
        "factors": list(featurizer.factors_),
    }


def save_models(folder: VersionFolder, model: Pipeline) -> dict[str, str]:
    """Writes every format into `folder`; returns {file name: sha256} for `model_files`."""
    from pipeline import io

    io.dump_joblib(model, folder.model)
    with io.atomic_path(folder.onnx_model) as tmp:
        tmp.write_bytes(to_onnx(model))
    files = (folder.model_file(model_format) for model_format in MODEL_FORMATS)
    return {path.name: sha256(path.read_bytes()) for path in files}
