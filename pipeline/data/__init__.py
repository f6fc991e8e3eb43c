"""MovieLens in: reading, cleaning, downloading and synthesizing ratings, and id lookups."""
