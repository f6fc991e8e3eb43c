-- The Idempotency-Key a client sent with the POST that added the movie: the same POST sent
-- again (after a timeout whose outcome it could not know) finds the movie instead of adding
-- a second one.
ALTER TABLE movies ADD COLUMN request_key text UNIQUE CHECK (length(request_key) <= 64);
