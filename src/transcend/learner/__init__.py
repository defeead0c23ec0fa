"""Learner: a small decoder-only transformer and its training loop."""
