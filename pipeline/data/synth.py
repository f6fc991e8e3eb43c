"""MovieLens-shaped synthetic data at any size, for load tests beyond the releases at hand.

The output is the ml-latest CSV layout (movies.csv, ratings.csv, tags.csv; links.csv is left
out because nothing downstream reads it), so the pipeline reads it unchanged. Sizes scale like
the real releases and the marginals follow them: Zipf-like movie popularity, log-normal user
activity with MovieLens's minimum of 20 ratings per user, ml-25m's half-star rating mix and
ml-latest's genre shares. Everything is vectorized numpy drawn from one seeded Generator, so a
seed gives byte-identical files and 25M ratings take seconds, not hours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from pipeline.data.genres import NO_GENRES
from pipeline.errors import ParameterError
from pipeline.io import atomic_path

MIN_RATINGS_PER_USER = 20
RATINGS_PER_USER = 155  # ml-25m: 25,000,095 / 162,541; ml-latest-small: 100,836 / 610 = 165
# Movies grow as a power of the rating count, fitted through ml-latest-small and ml-25m.
_SMALL, _LARGE = (100_836, 9_742), (25_000_095, 62_423)
MOVIES_EXPONENT = math.log(_LARGE[1] / _SMALL[1]) / math.log(_LARGE[0] / _SMALL[0])
MOVIES_AT_ONE_RATING = _SMALL[1] / _SMALL[0] ** MOVIES_EXPONENT
MOVIE_ID_SPREAD = 3  # real movieIds have gaps (ml-25m: 62k movies, ids up to 209k)

ACTIVITY_SIGMA = 1.45  # log-normal spread of ratings beyond the minimum; heaviest users ~30k
MAX_USER_SHARE_OF_MOVIES = 0.5  # keeps drawing a user's movies without repeats cheap
# Popularity of the movie at rank r (0-based) ~ (r + q)^-a with q = OFFSET * movies.
POPULARITY_EXPONENT = 1.8
POPULARITY_OFFSET = 0.002
WEIGHTED_ROUNDS = 12  # top-up rounds by popularity before falling back to uniform draws

RATING_LABELS = ("0.5", "1.0", "1.5", "2.0", "2.5", "3.0", "3.5", "4.0", "4.5", "5.0")
ML25M_RATING_COUNTS = (
    393_068, 776_815, 399_490, 1_640_868, 1_262_797, 4_896_928, 3_177_318, 6_639_798, 2_200_539,
    3_612_474,
)  # fmt: skip
# A rating is the quantile of movie quality + user bias + noise, so it follows the ml-25m mix
# overall while good movies and generous users rate higher. The parts sum to unit variance.
QUALITY_SD, POPULARITY_QUALITY_SD, USER_BIAS_SD = 0.45, 0.15, 0.40
NOISE_SD = math.sqrt(1 - QUALITY_SD**2 - POPULARITY_QUALITY_SD**2 - USER_BIAS_SD**2)

FIRST_TIMESTAMP, LAST_TIMESTAMP = 820_454_400, 1_538_265_600  # 1996-01-01 .. 2018-09-30 UTC
ACTIVE_DAYS_MEDIAN, ACTIVE_DAYS_SIGMA = 20, 2.5  # most users rate in a burst, a few for years

# Share of movies carrying each genre, close to ml-latest-small; each movie gets 1 to 3.
GENRE_SHARES = {
    "Action": 0.16, "Adventure": 0.11, "Animation": 0.055, "Children": 0.055, "Comedy": 0.32,
    "Crime": 0.11, "Documentary": 0.05, "Drama": 0.45, "Fantasy": 0.065, "Film-Noir": 0.008,
    "Horror": 0.10, "IMAX": 0.01, "Musical": 0.025, "Mystery": 0.055, "Romance": 0.15,
    "Sci-Fi": 0.085, "Thriller": 0.18, "War": 0.035, "Western": 0.017,
}  # fmt: skip
MAX_GENRES = 3
NO_GENRES_SHARE = 0.01
COMMA_TITLE_SHARE = 0.15  # "Synthetic Movie 7, The (1994)", quoted in the CSV like the real ones
YEAR_RANGE, YEAR_AGE_SCALE = (1902, 2018), 20  # release years skew recent, like the catalogue
# Opt-in words that open every n-th title, as accented UTF-8 titles do in the real catalogue
# ("Misérables, Les (1995)"): two-byte Latin letters, Polish ones beyond Latin-1, a ligature.
ACCENTED_WORDS = ("Amélie", "Café", "Déjà vu", "Señor", "Über", "Łódź", "Cœur", "Smörgåsbord")

TAG_RATE = 0.035  # tags per rating: ml-latest-small 3.7%, ml-25m 4.4%
TAG_WORDS = (
    "In Netflix queue", "atmospheric", "superhero", "thought-provoking", "funny", "Disney",
    "surreal", "religion", "sci-fi", "dark comedy", "twist ending", "visually appealing",
    "based on a book", "classic", "quirky", "psychology", "time travel", "Oscar (Best Picture)",
    "cinematography", "boring", "predictable", "great soundtrack", "space", "animation",
)  # fmt: skip


@dataclass(frozen=True)
class Shape:
    """How many users and movies a release with `ratings` ratings has."""

    ratings: int
    users: int
    movies: int

    @classmethod
    def for_ratings(cls, ratings: int) -> Shape:
        if ratings < MIN_RATINGS_PER_USER:
            raise ParameterError(f"need at least {MIN_RATINGS_PER_USER} ratings, got {ratings}")
        users = min(max(round(ratings / RATINGS_PER_USER), 1), ratings // MIN_RATINGS_PER_USER)
        movies = round(MOVIES_AT_ONE_RATING * ratings**MOVIES_EXPONENT)
        return cls(ratings, users, movies)

    @property
    def max_per_user(self) -> int:
        return int(self.movies * MAX_USER_SHARE_OF_MOVIES)


@dataclass
class SynthData:
    movies: pd.DataFrame  # movieId, title, genres
    ratings: pa.Table  # userId, movieId, rating, timestamp; sorted by userId, movieId
    tags: pa.Table  # userId, movieId, tag, timestamp


def generate(n_ratings: int, seed: int = 42, accented_every: int = 0) -> SynthData:
    """`accented_every` n > 0 opens every n-th movie's title with one of ACCENTED_WORDS; it
    draws nothing from the generator, so every other byte stays what the seed gives."""
    shape = Shape.for_ratings(n_ratings)
    rng = np.random.default_rng(seed)
    movie_ids = np.sort(rng.choice(shape.movies * MOVIE_ID_SPREAD, shape.movies, replace=False)) + 1
    movie_of_rank = rng.permutation(shape.movies)
    counts = user_counts(rng, shape)
    keys = rating_pairs(rng, counts, shape.movies, movie_of_rank)
    users = keys // shape.movies
    movies = keys - users * shape.movies
    del keys
    ratings = pa.table(
        {
            "userId": (users + 1).astype(np.int32),
            "movieId": movie_ids[movies].astype(np.int32),
            "rating": _ratings(rng, users, movies, movie_of_rank, shape.users),
            "timestamp": _timestamps(rng, users, shape.users),
        }
    )
    movies = _movies(rng, movie_ids)
    if accented_every:
        movies["title"] = _accented(movies["title"], accented_every)
    return SynthData(movies, ratings, _tags(rng, ratings))


def user_counts(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """Ratings per user: at least the minimum, log-normal above it, summing to exactly N."""
    weights = rng.lognormal(0.0, ACTIVITY_SIGMA, shape.users)
    spare = shape.ratings - MIN_RATINGS_PER_USER * shape.users
    counts = MIN_RATINGS_PER_USER + np.floor(spare * weights / weights.sum()).astype(np.int64)
    np.minimum(counts, shape.max_per_user, out=counts)
    while (short := shape.ratings - int(counts.sum())) > 0:
        room = np.flatnonzero(counts < shape.max_per_user)
        counts[rng.choice(room, min(short, room.size), replace=False)] += 1
    return counts


def rating_pairs(
    rng: np.random.Generator, counts: np.ndarray, n_movies: int, movie_of_rank: np.ndarray
) -> np.ndarray:
    """Distinct (user, movie) pairs as sorted keys user * n_movies + movie, counts[u] per user.

    Every user's movies are drawn at once by popularity and repeats dropped with one sort of the
    keys; users left short draw again, in the end uniformly, as the heaviest raters may have
    used up the popular movies.
    """
    user_ids = np.arange(counts.size, dtype=np.int64)

    def draw(deficit: np.ndarray, weighted: bool) -> np.ndarray:
        users = np.repeat(user_ids, deficit)
        if weighted:
            movies = movie_of_rank[_popularity_ranks(rng, users.size, n_movies)]
        else:
            movies = rng.integers(0, n_movies, users.size)
        return _sorted_unique(users * n_movies + movies)

    keys = draw(counts, weighted=True)
    extra = np.empty(0, dtype=np.int64)
    deficit = counts - np.bincount(keys // n_movies, minlength=counts.size)
    rounds = 1
    while deficit.any():
        new = draw(deficit, weighted=rounds < WEIGHTED_ROUNDS)
        new = new[~(_contains(keys, new) | _contains(extra, new))]
        extra = _merge(extra, new)
        deficit -= np.bincount(new // n_movies, minlength=counts.size)
        rounds += 1
    return _merge(keys, extra)


def _popularity_ranks(rng: np.random.Generator, size: int, n_movies: int) -> np.ndarray:
    """Ranks drawn from a continuous Zipf-Mandelbrot law by inverting its CDF in closed form."""
    s = 1.0 - POPULARITY_EXPONENT
    offset = POPULARITY_OFFSET * n_movies
    low, high = offset**s, (n_movies + offset) ** s
    ranks = (low + rng.random(size) * (high - low)) ** (1.0 / s) - offset
    return np.minimum(ranks.astype(np.int64), n_movies - 1)


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique, minus its cost: a plain sort and a neighbour comparison."""
    values = np.sort(values)
    keep = np.ones(values.size, dtype=bool)
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def _merge(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two sorted arrays as one: numpy's stable sort on int64 is a timsort, linear on two runs."""
    return np.sort(np.concatenate([left, right]), kind="stable")


def _contains(sorted_haystack: np.ndarray, needles: np.ndarray) -> np.ndarray:
    if sorted_haystack.size == 0:
        return np.zeros(needles.size, dtype=bool)
    at = np.minimum(np.searchsorted(sorted_haystack, needles), sorted_haystack.size - 1)
    return sorted_haystack[at] == needles


def _ratings(
    rng: np.random.Generator,
    users: np.ndarray,
    movies: np.ndarray,
    movie_of_rank: np.ndarray,
    n_users: int,
) -> pa.DictionaryArray:
    n_movies = movie_of_rank.size
    rank_of_movie = np.empty(n_movies, dtype=np.int64)
    rank_of_movie[movie_of_rank] = np.arange(n_movies)
    fame = -np.log1p(rank_of_movie)
    quality = (
        QUALITY_SD * rng.standard_normal(n_movies)
        + POPULARITY_QUALITY_SD * (fame - fame.mean()) / fame.std()
    ).astype(np.float32)
    bias = (USER_BIAS_SD * rng.standard_normal(n_users)).astype(np.float32)
    latent = rng.standard_normal(users.size, dtype=np.float32)
    latent *= NOISE_SD
    latent += quality[movies]
    latent += bias[users]
    # Cut points at the latent's own quantiles: popular movies, rated more often, are also better,
    # so fixed normal quantiles would drift the mix upwards.
    shares = np.cumsum(ML25M_RATING_COUNTS[:-1]) / sum(ML25M_RATING_COUNTS)
    grid = np.searchsorted(np.quantile(latent, shares), latent).astype(np.int8)
    # Labels, not floats: pyarrow would write 4.0 as "4", MovieLens writes "4.0".
    return pa.DictionaryArray.from_arrays(grid, pa.array(RATING_LABELS))


def _timestamps(rng: np.random.Generator, users: np.ndarray, n_users: int) -> np.ndarray:
    """Each user rates inside an active window placed at random in 1996-2018."""
    days = rng.lognormal(math.log(ACTIVE_DAYS_MEDIAN), ACTIVE_DAYS_SIGMA, n_users)
    window = np.minimum(days * 86_400, LAST_TIMESTAMP - FIRST_TIMESTAMP)
    start = FIRST_TIMESTAMP + rng.random(n_users) * (LAST_TIMESTAMP - FIRST_TIMESTAMP - window)
    offsets = rng.random(users.size)
    offsets *= window[users]
    offsets += start[users]
    return offsets.astype(np.int64)


def _movies(rng: np.random.Generator, movie_ids: np.ndarray) -> pd.DataFrame:
    n = movie_ids.size
    age = rng.exponential(YEAR_AGE_SCALE, n).astype(np.int64)
    years = np.clip(YEAR_RANGE[1] - age, *YEAR_RANGE)
    article = np.where(rng.random(n) < COMMA_TITLE_SHARE, ", The", "")
    titles = np.strings.add(np.strings.add("Synthetic Movie ", movie_ids.astype(str)), article)
    titles = np.strings.add(np.strings.add(titles, " ("), np.strings.add(years.astype(str), ")"))
    return pd.DataFrame({"movieId": movie_ids, "title": titles, "genres": _genres(rng, n)})


def _accented(titles: pd.Series, every: int) -> pd.Series:
    """Titles 0, every, 2 * every, ... opened with the accented words in turn."""
    if every < 1:
        raise ParameterError(f"accented_every must be at least 1, got {every}")
    chosen = np.arange(len(titles)) % every == 0
    words = np.resize(np.array(ACCENTED_WORDS), int(chosen.sum()))
    titles = titles.copy()
    titles[chosen] = np.strings.add(np.strings.add(words, " "), titles[chosen].to_numpy(str))
    return titles


def _genres(rng: np.random.Generator, n: int) -> np.ndarray:
    """Each genre independently at its share; then trimmed to at most 3 and topped up to 1."""
    names = np.array(sorted(GENRE_SHARES))  # MovieLens lists a movie's genres alphabetically
    share = np.array([GENRE_SHARES[name] for name in names])
    chosen = rng.random((n, names.size)) < share
    bare = np.flatnonzero(~chosen.any(axis=1))
    chosen[bare, rng.choice(names.size, bare.size, p=share / share.sum())] = True
    # Keep a random MAX_GENRES of the chosen, then list the kept ones first, alphabetically.
    keys = np.where(chosen, rng.random(chosen.shape), 2.0)
    picked = np.argsort(keys, axis=1)[:, :MAX_GENRES]
    kept = np.take_along_axis(chosen, picked, axis=1)
    picked = np.sort(np.where(kept, picked, names.size), axis=1)
    labels = np.append(names, "")[picked]
    text = labels[:, 0]
    for column in range(1, MAX_GENRES):
        joined = np.strings.add(np.strings.add(text, "|"), labels[:, column])
        text = np.where(picked[:, column] < names.size, joined, text)
    return np.where(rng.random(n) < NO_GENRES_SHARE, NO_GENRES, text)


def _tags(rng: np.random.Generator, ratings: pa.Table) -> pa.Table:
    """Tags go on rated movies, a few percent of the ratings, Zipf-like over a small vocabulary."""
    rows = np.flatnonzero(rng.random(ratings.num_rows) < TAG_RATE)
    weights = 1.0 / np.arange(1, len(TAG_WORDS) + 1)
    words = rng.choice(len(TAG_WORDS), rows.size, p=weights / weights.sum()).astype(np.int8)
    delay = rng.integers(0, 86_400, rows.size)
    return pa.table(
        {
            "userId": ratings["userId"].take(rows),
            "movieId": ratings["movieId"].take(rows),
            "tag": pa.DictionaryArray.from_arrays(words, pa.array(TAG_WORDS)),
            "timestamp": ratings["timestamp"].to_numpy()[rows] + delay,
        }
    )


def write(data: SynthData, out: str | Path) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "movies.csv") as tmp:  # pandas quotes only titles that need it
        data.movies.to_csv(tmp, index=False)
    _write_unquoted(data.ratings, out / "ratings.csv")
    _write_unquoted(data.tags, out / "tags.csv")


def _write_unquoted(table: pa.Table, path: Path) -> None:
    """pyarrow quotes the header and every string; MovieLens quotes neither, so the header is
    written by hand and the body (which holds no commas or quotes) without quoting."""
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        handle.write((",".join(table.column_names) + "\n").encode())
        pacsv.write_csv(table, handle, options)


def synthesize(
    n_ratings: int, out: str | Path, seed: int = 42, accented_every: int = 0
) -> SynthData:
    data = generate(n_ratings, seed, accented_every)
    write(data, out)
    return data
