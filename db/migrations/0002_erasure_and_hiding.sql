-- Users erased on request (the right to erasure): the id and the time, nothing else. The
-- tombstone keeps the user out of every later snapshot, full or incremental, and refuses
-- writes to the id.
CREATE TABLE erased_users (
    user_id   bigint PRIMARY KEY CHECK (user_id BETWEEN 1 AND 4294967295),
    erased_at timestamptz NOT NULL DEFAULT now()
);

-- A movie withdrawn from every list; kept, because ratings refer to it.
ALTER TABLE movies ADD COLUMN hidden boolean NOT NULL DEFAULT false;
