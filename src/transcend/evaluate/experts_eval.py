"""Each expert's own accuracy: its answer to a query is drawn from the tails it holds for it.

An expert that holds nothing for a query (its fact lost its head to a
corruption, or lies outside what it knows) still answers, as a language model
trained on its text would: it guesses from the relation, drawing from the
tails it holds for that relation. Scoring such queries 0 instead would let a
model beat a single expert merely by guessing popular answers.
"""

from __future__ import annotations

import numpy as np

from transcend.evaluate.ideal import relation_prior_accuracy
from transcend.experts.panel import ExpertPanel


def expert_accuracy(panel: ExpertPanel) -> np.ndarray:
    """(num_experts, num_queries): the share of an expert's tails for the query that are correct
    (where it holds none: the share of its tails for the relation that are correct for the query)."""
    kg = panel.kg
    nq = len(kg.queries[0])
    q = kg.query_key(panel.heads, panel.rels)
    ok = q >= 0
    flat = panel.expert[ok].astype(np.int64) * nq + q[ok]
    total = np.bincount(flat, minlength=panel.num_experts * nq)
    right = np.bincount(flat, weights=panel.correct[ok], minlength=panel.num_experts * nq)
    acc = np.divide(right, total, out=np.zeros(len(total)), where=total > 0)
    missing = np.flatnonzero(total == 0)
    if len(missing):
        acc[missing] = relation_prior_accuracy(panel.expert, panel.rels, panel.tails, kg, missing // nq,
                                               missing % nq, [1.0])[1.0]
    return acc.reshape(panel.num_experts, nq)
