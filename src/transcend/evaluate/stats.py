"""Uncertainty of the transcendence gap: a bootstrap over queries (one run) and a t-interval over seeds
(a grid point of a reproduction), and the rule that calls a grid point transcendent."""

from __future__ import annotations

import math
from typing import NamedTuple

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


class SeedInterval(NamedTuple):
    """The mean of one number over seeds and the 95% interval of that mean (``lo``/``hi`` None: undefined)."""
    mean: float
    lo: float | None
    hi: float | None
    n: int

    @property
    def defined(self) -> bool:
        return self.lo is not None


def seed_interval(values, level: float = 0.95) -> SeedInterval:
    """Mean over seeds and Student's t interval of that mean: ``scipy.stats.t.interval(level, n - 1,
    loc=mean, scale=scipy.stats.sem(values))``, i.e. mean ± t_{n-1} · s/√n.

    A t-interval rather than ``scipy.stats.bootstrap``: a reproduction runs a few seeds (three by default),
    and a bootstrap of three values has only ten distinct resamples, so its percentiles say little; the
    t-interval is the standard interval of a mean from a few roughly normal draws. None and NaN values are
    left out. With one value the interval is undefined (``lo`` and ``hi`` None: nothing to estimate a spread
    from); with none, the mean is NaN too. Values that are all equal give the interval [mean, mean].
    """
    from scipy import stats

    v = np.asarray([x for x in values if x is not None], dtype=float)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return SeedInterval(math.nan, None, None, 0)
    mean = float(v.mean())
    if len(v) == 1:
        return SeedInterval(mean, None, None, 1)
    if np.all(v == v[0]):  # no spread: SciPy's interval of scale 0 is NaN; the interval is the point
        return SeedInterval(mean, mean, mean, len(v))
    lo, hi = stats.t.interval(level, len(v) - 1, loc=mean, scale=stats.sem(v))
    return SeedInterval(mean, float(lo), float(hi), len(v))


class Verdict(NamedTuple):
    """Whether a grid point transcends, and on which interval that was decided."""
    transcendent: bool | None
    # "seeds": the interval of the gap over seeds; "queries": one seed, the run's bootstrap over queries;
    # None: no gap measured.
    basis: str | None

    def label(self) -> str:
        if self.transcendent is None:
            return "–"
        word = "yes" if self.transcendent else "no"
        return word if self.basis == "seeds" else f"{word} (1 seed: query bootstrap)"


def transcendent(seed_gaps, query_ci: tuple[float, float] | None = None, level: float = 0.95) -> Verdict:
    """The lab's one rule for calling a grid point transcendent: the lower end of the 95% interval of the gap
    (model − best expert) over seeds lies above 0. A mean gap above 0 whose interval reaches 0 is not
    transcendence. With one seed there is no interval over seeds: the run's bootstrap interval over queries
    (``query_ci``, its (lo, hi)) decides instead, and the verdict's basis says so."""
    iv = seed_interval(seed_gaps, level)
    if iv.n >= 2:
        return Verdict(bool(iv.lo > 0), "seeds")
    if iv.n == 1 and query_ci is not None and query_ci[0] is not None and not math.isnan(query_ci[0]):
        return Verdict(bool(query_ci[0] > 0), "queries")
    return Verdict(None, None)
