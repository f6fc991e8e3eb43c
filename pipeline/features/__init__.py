"""Movie features: the featurizer, its scaling and the collaborative factors.

`MovieFeaturizer` is named here too, lazily: joblib models saved before the stages had folders
pickled it as `pipeline.features.MovieFeaturizer`, and they still load.
"""


def __getattr__(name: str) -> object:
    if name == "MovieFeaturizer":
        from pipeline.features.featurizer import MovieFeaturizer

        return MovieFeaturizer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
