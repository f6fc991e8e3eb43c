"""Clusters of movies: fitting, summaries, names and descriptions, and ids kept across retrains."""
