"""Uncertainty of the transcendence gap: a bootstrap over queries."""

from __future__ import annotations

import math

import numpy as np


def gap_bootstrap_ci(model_q: np.ndarray, experts_q: np.ndarray, seed: int = 0, resamples: int = 1000,
                     level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of mean(model) - max_i mean(expert_i), resampling queries.

    The best expert is re-chosen in every resample, so the interval accounts for
    picking the maximum of several noisy experts.
    """
    rng = np.random.default_rng([seed, 0xB00])
    nq = len(model_q)
    weights = np.zeros((resamples, nq))
    for b in range(resamples):
        weights[b] = np.bincount(rng.integers(0, nq, size=nq), minlength=nq)
    weights /= nq
    gaps = weights @ model_q - (weights @ np.atleast_2d(experts_q).T).max(axis=1)
    lo, hi = np.quantile(gaps, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def seed_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean over seeds and Student's t interval of that mean: (mean, lo, hi). NaNs are left out; with one
    value the interval is that value (nothing to estimate a spread from); with none, all NaN."""
    from scipy import stats

    v = np.asarray([x for x in values if x is not None], dtype=float)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    mean = float(v.mean())
    if len(v) == 1 or np.all(v == v[0]):
        return mean, mean, mean
    lo, hi = stats.t.interval(level, len(v) - 1, loc=mean, scale=stats.sem(v))
    return mean, float(lo), float(hi)
