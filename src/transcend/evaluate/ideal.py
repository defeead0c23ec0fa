"""The ideal learner: the exact mixture f̄(y|x) counted from the corpus.

For a query, f̄ is the share of the corpus's sentences about (head, relation)
that name each tail. Sampling f̄ at temperature tau draws tail y with probability
proportional to count(y)^(1/tau); tau -> 0 is the plurality answer (ties split
evenly). It is the limit a perfect learner of the training text reaches.
"""

from __future__ import annotations

import numpy as np

from transcend.experts.writing import Writing
from transcend.world.kg import KnowledgeGraph


def answer_counts(writing: Writing, kg: KnowledgeGraph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (query, tail) pairs written, with their counts: (query, tail, count)."""
    q = kg.query_key(writing.sent_head, writing.sent_rel)
    ok = q >= 0
    key = q[ok] * kg.num_entities + writing.sent_tail[ok]
    uniq, count = np.unique(key, return_counts=True)
    return uniq // kg.num_entities, uniq % kg.num_entities, count


def writes_per_query(writing: Writing, kg: KnowledgeGraph) -> np.ndarray:
    """How many sentences answer each query (in any way)."""
    q, _, count = answer_counts(writing, kg)
    return np.bincount(q, weights=count, minlength=len(kg.queries[0])).astype(np.int64)


def ideal_accuracy(writing: Writing, kg: KnowledgeGraph, temperatures: list[float]) -> dict[float, np.ndarray]:
    """Per-query accuracy of the ideal learner at each temperature (0 where nothing was written)."""
    q, tail, count = answer_counts(writing, kg)
    qh, qr = kg.queries
    right = kg.is_fact(qh[q], qr[q], tail).astype(np.float64)
    nq = len(qh)
    top = np.zeros(nq)
    np.maximum.at(top, q, count)
    out = {}
    for tau in temperatures:
        if tau == 0:
            w = (count == top[q]).astype(np.float64)
        else:
            w = np.exp((np.log(count) - np.log(top[q])) / tau)
        num = np.bincount(q, weights=w * right, minlength=nq)
        den = np.bincount(q, weights=w, minlength=nq)
        out[tau] = np.divide(num, den, out=np.zeros(nq), where=den > 0)
    return out
