import numpy as np
import pandas as pd
import pytest

from pipeline.features import scaling
from pipeline.features.scaling import make_scaler, standardize_per_user, user_zscores

RATINGS = pd.DataFrame({"userId": [1, 1, 1, 2, 2], "rating": [1.0, 3.0, 5.0, 4.0, 4.0]})


def test_zscore_per_user():
    z = standardize_per_user(RATINGS, "zscore")
    spread = np.std([1.0, 3.0, 5.0])
    assert z[:3] == pytest.approx([-2 / spread, 0.0, 2 / spread])
    assert z[3:].tolist() == [0.0, 0.0]  # no spread: no signal, not a division by zero


def test_zscores_gathered_in_chunks_equal_the_whole_array_formula(monkeypatch):
    rng = np.random.default_rng(3)
    codes = np.sort(rng.integers(0, 40, 1000))
    rating = rng.integers(1, 11, 1000).astype(np.float32) / 2
    r = rating.astype(np.float64)
    n = np.bincount(codes, minlength=40)
    mean = np.bincount(codes, r, 40) / np.maximum(n, 1)
    std = np.sqrt(np.maximum(np.bincount(codes, r * r, 40) / np.maximum(n, 1) - mean**2, 0.0))
    inverse = np.divide(1.0, std, out=np.zeros_like(std), where=std > 0)
    monkeypatch.setattr(scaling, "CHUNK", 7)
    assert user_zscores(codes, rating, 40).tolist() == ((r - mean[codes]) * inverse[codes]).tolist()


def test_minmax_per_user():
    assert standardize_per_user(RATINGS, "minmax").tolist() == [0.0, 0.5, 1.0, 0.0, 0.0]


def test_robust_per_user():
    # user 1: median 3, quartiles 2 and 4
    assert standardize_per_user(RATINGS, "robust")[:3].tolist() == [-1.0, 0.0, 1.0]


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="unknown scaling 'bogus'"):
        make_scaler("bogus")
    with pytest.raises(ValueError, match="unknown scaling"):
        standardize_per_user(RATINGS, "bogus")
