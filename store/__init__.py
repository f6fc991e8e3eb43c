"""The version store: where model versions live (a folder or an S3 bucket), and each host's
cache of the files it has read from it."""
