"""Skill denoising: every expert knows the whole graph, each fact correct with probability c."""

from __future__ import annotations

import numpy as np

from transcend.experts.panel import ExpertPanel, corrupt_edges
from transcend.world.kg import KnowledgeGraph


def denoising_panel(kg: KnowledgeGraph, num_experts: int, coverage: float, seed: int,
                    rho: float | None = None) -> ExpertPanel:
    """Each expert keeps every edge correct with probability ``coverage``, independently per
    expert, and otherwise corrupts it (head or tail swapped); all experts write about everything.

    ``rho`` correlates the errors: each edge has one *shared misconception* (a corruption drawn
    once for all experts), and an expert's corrupted copy of the edge is that misconception with
    probability ``rho``, else its own independent corruption. Whether an expert errs on an edge
    stays independent (probability 1 - coverage); rho = 1 makes all who err agree. rho = 0 or
    None draws exactly what the independent panel draws.
    """
    rng = np.random.default_rng([seed, 0xE4])  # stream reserved for the experts
    E = kg.num_edges
    edge = np.tile(np.arange(E), num_experts)
    expert = np.repeat(np.arange(num_experts, dtype=np.int32), E)
    keep = rng.random(len(edge)) < coverage
    h, r, t = kg.heads[edge].copy(), kg.rels[edge].copy(), kg.tails[edge].copy()
    bad = np.flatnonzero(~keep)
    h[bad], r[bad], t[bad] = corrupt_edges(kg, edge[bad], rng)
    if rho:
        shared_rng = np.random.default_rng([seed, 0xE5])  # the shared misconceptions, and who takes them
        sh, sr, st = corrupt_edges(kg, np.arange(E), shared_rng)
        take = bad[shared_rng.random(len(bad)) < rho]
        h[take], r[take], t[take] = sh[edge[take]], sr[edge[take]], st[edge[take]]
    return ExpertPanel(kg=kg, num_experts=num_experts, expert=expert, heads=h, rels=r, tails=t,
                       write_prob=np.ones(len(edge)))
