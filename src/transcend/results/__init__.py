"""Results: metrics written beside each run."""
