"""Evaluation: model, experts, ideal learner and theory on the same queries."""
