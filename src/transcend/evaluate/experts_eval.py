"""Each expert's own accuracy: its answer to a query is drawn from the tails it holds for it."""

from __future__ import annotations

import numpy as np

from transcend.experts.panel import ExpertPanel


def expert_accuracy(panel: ExpertPanel) -> np.ndarray:
    """(num_experts, num_queries): the share of an expert's tails for the query that are correct
    (0 where it holds none: it cannot answer)."""
    kg = panel.kg
    nq = len(kg.queries[0])
    q = kg.query_key(panel.heads, panel.rels)
    ok = q >= 0
    flat = panel.expert[ok].astype(np.int64) * nq + q[ok]
    total = np.bincount(flat, minlength=panel.num_experts * nq)
    right = np.bincount(flat, weights=panel.correct[ok], minlength=panel.num_experts * nq)
    acc = np.divide(right, total, out=np.zeros(len(total)), where=total > 0)
    return acc.reshape(panel.num_experts, nq)
