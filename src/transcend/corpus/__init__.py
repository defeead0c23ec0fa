"""Corpus: training text rendered from what experts write, tokenized into shards, plus query sets."""
