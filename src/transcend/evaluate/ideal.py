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


def writes_per_answer(writing: Writing, kg: KnowledgeGraph) -> float:
    """Sentences per distinct (query, answer) written, on average: how often the corpus repeats each thing
    it says about a query (low where a query's writes spread over many answers)."""
    _, _, count = answer_counts(writing, kg)
    return float(count.mean()) if len(count) else 0.0


def weighted_unique(keys: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys and their total weight (their count without weights); zero weights dropped."""
    if weights is None:
        return np.unique(keys, return_counts=True)
    keep = np.asarray(weights) > 0
    uniq, inv = np.unique(keys[keep], return_inverse=True)
    return uniq, np.bincount(inv.ravel(), weights=np.asarray(weights, np.float64)[keep], minlength=len(uniq))


def relation_prior_accuracy(group: np.ndarray, rels: np.ndarray, tails: np.ndarray, kg: KnowledgeGraph,
                            need_group: np.ndarray, need_query: np.ndarray, temperatures: list[float],
                            weights: np.ndarray | None = None) -> dict[float, np.ndarray]:
    """Accuracy of guessing a query from its relation alone.

    Observations (group, relation, tail) — a group is one expert, or the whole
    corpus — define, per group and relation, a distribution over tails; sampling
    it at temperature tau draws y with probability proportional to count(y)^(1/tau)
    (tau = 0: the most frequent tails, ties split). Returns, for each requested
    (need_group, need_query), the probability that the guess is a correct tail
    (0 where the group holds nothing for the relation). ``weights`` (optional) weigh the
    observations (an expert's beliefs by how often it writes them).
    """
    R, E = len(kg.relations), kg.num_entities
    keys, counts = weighted_unique((np.asarray(group, np.int64) * R + rels) * E + tails, weights)
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
            w_right = np.where(c_right > 0, np.exp((np.log(np.where(c_right > 0, c_right, 1.0)) - np.log(top[pos][owner]))
                                                   / tau), 0.0)
        den = np.add.reduceat(w_all, gr_start) if len(counts) else np.zeros(0)
        num = np.bincount(owner, weights=w_right, minlength=len(need_query))
        out[tau] = np.where(has, num / np.where(has, den[pos] if len(den) else 1.0, 1.0), 0.0)
    return out


def decoded_accuracy(group: np.ndarray, heads: np.ndarray, rels: np.ndarray, tails: np.ndarray,
                     kg: KnowledgeGraph, temperatures: list[float], num_groups: int,
                     weights: np.ndarray | None = None) -> dict[float, np.ndarray]:
    """The one scoring rule: per (group, query), the accuracy of decoding the group's answers.

    Observations (group, head, relation, tail) — a group is one expert's beliefs,
    or the whole corpus's sentences — give each group a distribution over tails
    per query: the share of its observations naming each tail. Decoded at
    temperature tau it draws y with probability proportional to count(y)^(1/tau);
    tau = 0 is its mode, ties split evenly. A correct answer is any correct tail.
    Where a group holds nothing for a query it guesses from the relation alone
    (``relation_prior_accuracy``, decoded the same way). Returns, per tau, an array
    (num_groups, num_queries). ``weights`` (optional) weigh the observations; an
    observation of weight 0 is not there.
    """
    nq = len(kg.queries[0])
    E = kg.num_entities
    q = kg.query_key(heads, rels)
    ok = q >= 0
    gq = np.asarray(group, np.int64)[ok] * nq + q[ok]
    uniq, count = weighted_unique(gq * E + np.asarray(tails, np.int64)[ok],
                                   None if weights is None else np.asarray(weights)[ok])
    gq, tail = uniq // E, uniq % E
    qh, qr = kg.queries
    right = kg.is_fact(qh[gq % nq], qr[gq % nq], tail).astype(np.float64)
    size = num_groups * nq
    top = np.zeros(size)
    np.maximum.at(top, gq, count)
    out = {}
    for tau in temperatures:
        if tau == 0:
            w = (count == top[gq]).astype(np.float64)
        else:
            w = np.exp((np.log(count) - np.log(top[gq])) / tau)
        num = np.bincount(gq, weights=w * right, minlength=size)
        den = np.bincount(gq, weights=w, minlength=size)
        out[tau] = np.divide(num, den, out=np.zeros(size), where=den > 0)
    missing = np.flatnonzero(np.bincount(gq, minlength=size) == 0)
    if len(missing):
        prior = relation_prior_accuracy(group, rels, tails, kg, missing // nq, missing % nq, temperatures, weights)
        for tau in temperatures:
            out[tau][missing] = prior[tau]
    return {tau: a.reshape(num_groups, nq) for tau, a in out.items()}


def ideal_accuracy(writing: Writing, kg: KnowledgeGraph, temperatures: list[float]) -> dict[float, np.ndarray]:
    """Per-query accuracy of the ideal learner at each temperature (an unwritten query: the
    relation's distribution of tails in the corpus)."""
    acc = decoded_accuracy(np.zeros(writing.num_sentences, np.int64), writing.sent_head, writing.sent_rel,
                           writing.sent_tail, kg, temperatures, 1)
    return {tau: a[0] for tau, a in acc.items()}
