"""The ideal learner: the exact mixture f̄(y|x) counted from the corpus.

For a query, f̄ is the share of the corpus's sentences about (head, relation)
that name each tail. Sampling f̄ at temperature tau draws tail y with probability
proportional to count(y)^(1/tau); tau -> 0 is the plurality answer (ties split
evenly). It is the limit a perfect learner of the training text reaches.

A query the corpus never answers still gets an answer from a perfect learner:
its best guess from the relation alone, i.e. the corpus's distribution of tails
for that relation (``relation_prior_accuracy``). Experts are scored the same
way on the queries they hold nothing for.
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


def relation_prior_accuracy(group: np.ndarray, rels: np.ndarray, tails: np.ndarray, kg: KnowledgeGraph,
                            need_group: np.ndarray, need_query: np.ndarray, temperatures: list[float]
                            ) -> dict[float, np.ndarray]:
    """Accuracy of guessing a query from its relation alone.

    Observations (group, relation, tail) — a group is one expert, or the whole
    corpus — define, per group and relation, a distribution over tails; sampling
    it at temperature tau draws y with probability proportional to count(y)^(1/tau)
    (tau = 0: the most frequent tails, ties split). Returns, for each requested
    (need_group, need_query), the probability that the guess is a correct tail
    (0 where the group holds nothing for the relation).
    """
    R, E = len(kg.relations), kg.num_entities
    keys, counts = np.unique((np.asarray(group, np.int64) * R + rels) * E + tails, return_counts=True)
    gr = keys // E  # (group, relation) of each distinct observation, sorted
    gr_keys, gr_start = np.unique(gr, return_index=True)
    top = np.maximum.reduceat(counts, gr_start) if len(counts) else counts
    qh, qr = kg.queries
    need_gr = np.asarray(need_group, np.int64) * R + qr[need_query]
    pos = np.minimum(np.searchsorted(gr_keys, need_gr), max(len(gr_keys) - 1, 0))
    has = (len(gr_keys) > 0) & (gr_keys[pos] == need_gr) if len(gr_keys) else np.zeros(len(need_gr), bool)
    # Correct tails of each needed query (its edges), and their counts in the group's distribution.
    bounds = np.searchsorted(kg.edge_query, np.arange(len(qh) + 1))
    lengths = bounds[need_query + 1] - bounds[need_query]
    owner = np.repeat(np.arange(len(need_query)), lengths)
    edge = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths) + np.repeat(
        bounds[need_query], lengths)
    k = need_gr[owner] * E + kg.tails[edge]
    kpos = np.minimum(np.searchsorted(keys, k), max(len(keys) - 1, 0))
    found = (keys[kpos] == k) if len(keys) else np.zeros(len(k), bool)
    c_right = np.where(found, counts[kpos] if len(keys) else 0, 0).astype(np.float64)
    out: dict[float, np.ndarray] = {}
    for tau in temperatures:
        if tau == 0:
            w_all = (counts == np.repeat(top, np.diff(np.r_[gr_start, len(counts)]))).astype(np.float64)
            w_right = (c_right == top[pos][owner]).astype(np.float64) * (c_right > 0)
        else:
            topc = np.repeat(top, np.diff(np.r_[gr_start, len(counts)]))
            w_all = np.exp((np.log(counts) - np.log(topc)) / tau)
            w_right = np.where(c_right > 0, np.exp((np.log(np.maximum(c_right, 1)) - np.log(top[pos][owner]))
                                                   / tau), 0.0)
        den = np.add.reduceat(w_all, gr_start) if len(counts) else np.zeros(0)
        num = np.bincount(owner, weights=w_right, minlength=len(need_query))
        out[tau] = np.where(has, num / np.where(has, den[pos] if len(den) else 1.0, 1.0), 0.0)
    return out


def ideal_accuracy(writing: Writing, kg: KnowledgeGraph, temperatures: list[float]) -> dict[float, np.ndarray]:
    """Per-query accuracy of the ideal learner at each temperature (an unwritten query: the
    relation's distribution of tails in the corpus)."""
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
    unwritten = np.flatnonzero(np.bincount(q, minlength=nq) == 0)
    if len(unwritten):
        prior = relation_prior_accuracy(np.zeros(writing.num_sentences, np.int64), writing.sent_rel,
                                        writing.sent_tail, kg, np.zeros(len(unwritten), np.int64), unwritten,
                                        temperatures)
        for tau in temperatures:
            out[tau][unwritten] = prior[tau]
    return out
