-- Movies, ratings and tags as the cleaning rules leave them, and the users whose ratings changed.

CREATE SEQUENCE movie_ids AS bigint MINVALUE 1 MAXVALUE 4294967295;

CREATE TABLE movies (
    movie_id   bigint PRIMARY KEY DEFAULT nextval('movie_ids')
               CHECK (movie_id BETWEEN 1 AND 4294967295),
    title      text NOT NULL CHECK (btrim(title) <> ''),
    genres     text NOT NULL DEFAULT '',  -- '|'-joined, empty when none
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER SEQUENCE movie_ids OWNED BY movies.movie_id;

-- One rating per (user, movie); writers keep the one with the latest rated_at.
CREATE TABLE ratings (
    user_id    bigint NOT NULL CHECK (user_id BETWEEN 1 AND 4294967295),
    movie_id   bigint NOT NULL REFERENCES movies (movie_id),
    rating     real NOT NULL
               CHECK (rating BETWEEN 0.5 AND 5.0 AND rating * 2 = round(rating * 2)),
    rated_at   integer NOT NULL CHECK (rated_at >= 0),  -- MovieLens timestamp, seconds (UTC)
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, movie_id)
);

-- Tags after the cleaning split: one row per (user, movie, lower-cased token).
CREATE TABLE tags (
    user_id    bigint NOT NULL CHECK (user_id BETWEEN 1 AND 4294967295),
    movie_id   bigint NOT NULL REFERENCES movies (movie_id),
    tag        text NOT NULL,
    filtered   text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, movie_id, filtered)
);

-- Every write to a user's ratings records its transaction here, in the same transaction, so a
-- retrain can tell exactly which users changed after its snapshot (pg_visible_in_snapshot),
-- and a refresh records which change it has applied to the cache.
CREATE TABLE user_changes (
    user_id       bigint PRIMARY KEY,
    changed_xid   xid8 NOT NULL,
    changed_at    timestamptz NOT NULL DEFAULT now(),
    refreshed_xid xid8
);
CREATE INDEX user_changes_pending ON user_changes (changed_at)
    WHERE refreshed_xid IS DISTINCT FROM changed_xid;
