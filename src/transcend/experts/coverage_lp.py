"""Coverage vectors for selection experts, solved as linear programs.

Expert i knows cluster j with probability s_i(j) and must know, in expectation,
a share c of all edges: sum_j s_i(j) |C_j| = c |E|. Each expert solves

    min  cost_i . s   s.t.  sizes . s = c |E|,  0 <= s <= 1

with HiGHS dual simplex, whose answer is a vertex: every entry 0 or 1 except
at most one (the cluster that tops the coverage up exactly).

The costs are ``u_ij * |C_j|`` with u_ij ~ U(0, 1): per edge, every cluster is
equally cheap in expectation, so an expert takes clusters in a uniformly
random order whatever their size. (Plain uniform costs per cluster would make
large clusters cheaper per edge, and experts would pile onto them.)
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog

from transcend.errors import TranscendError

# Entries this close to 0 or 1 are solver round-off and are snapped.
SNAP = 1e-9


def coverage_vectors(cluster_sizes: np.ndarray, coverage: float, num_experts: int, seed: int) -> np.ndarray:
    """Coverage s_i in [0, 1]^K per expert, shape ``(num_experts, K)``, with ``s_i . sizes = coverage * sizes.sum()``.

    At most one entry per expert is strictly between 0 and 1. Expert i's costs
    come from the i-th child stream of ``seed``, so adding experts keeps the
    first ones unchanged.
    """
    sizes = np.asarray(cluster_sizes, dtype=np.float64)
    if sizes.ndim != 1 or sizes.size == 0:
        raise TranscendError(f"cluster_sizes must be a non-empty 1-D array, got shape {sizes.shape}.")
    if not np.all(np.isfinite(sizes)) or sizes.min() <= 0:
        raise TranscendError("cluster_sizes must all be positive and finite: every cluster holds at least one edge.")
    if isinstance(num_experts, bool) or not isinstance(num_experts, (int, np.integer)) or num_experts < 1:
        raise TranscendError(f"num_experts is {num_experts!r}, but it must be an integer of at least 1.")
    if not isinstance(coverage, (int, float, np.floating, np.integer)) or not 0.0 <= float(coverage) <= 1.0:
        raise TranscendError(
            f"coverage is {coverage!r}, but it must be a share of the edges in [0, 1] for the linear program to be feasible."
        )
    total = float(sizes.sum())
    target = float(coverage) * total
    k = len(sizes)
    streams = np.random.default_rng([seed, 0x5E1C]).spawn(int(num_experts))
    out = np.empty((int(num_experts), k))
    for i, rng in enumerate(streams):
        cost = rng.random(k) * sizes
        # Presolve is dropped: on this one-row LP it costs ~20x the solve itself.
        res = linprog(cost, A_eq=sizes[None, :], b_eq=[target], bounds=(0.0, 1.0),
                      method="highs-ds", options={"presolve": False})
        if res.status != 0 or res.x is None:
            raise TranscendError(
                f"the coverage linear program has no solution for coverage {coverage} over {k} clusters "
                f"({res.message.strip()}); use a coverage in [0, 1]."
            )
        out[i] = _exact(res.x, sizes, target)
    return out


def _exact(s: np.ndarray, sizes: np.ndarray, target: float) -> np.ndarray:
    """Snap round-off to 0/1 and give the one fractional entry the exact remainder."""
    s = np.clip(s, 0.0, 1.0)
    s[s < SNAP] = 0.0
    s[s > 1.0 - SNAP] = 1.0
    frac = np.flatnonzero((s > 0.0) & (s < 1.0))
    if len(frac) == 1:
        j = frac[0]
        s[j] = 0.0
        s[j] = min(max((target - float(sizes @ s)) / sizes[j], 0.0), 1.0)
    gap = abs(float(sizes @ s) - target)
    if gap > 1e-6 * max(1.0, target):
        raise TranscendError(
            f"the coverage linear program missed its target of {target:g} edges by {gap:g}; "
            "this should not happen for a coverage in [0, 1]."
        )
    return s
