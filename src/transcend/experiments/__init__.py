"""Experiments: named sweeps over the typed config, run locally or on Ray, results in Parquet."""
