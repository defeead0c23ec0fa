"""Skill selection's measurements: the ceiling, who knows what, and the selection covariance.

Theorem 2.1 of the Taxonomy paper, generalised to n experts. The ideal
learner at tau = 1 answers query x with expert i's answer with probability
g(i|x), the share of the corpus's sentences about x that expert i wrote, so
its accuracy on x is sum_i g(i|x) r_x(f_i) (r_x(f_i): expert i's accuracy on
x). Averaged over queries,

    E_x[sum_i g(i|x) r_x(f_i)] = sum_i E_x[g(i|x)] E_x[r_x(f_i)] + sum_i Cov_x(g(i|x), r_x(f_i)),

the first term a g-weighted average of the experts' accuracies (their mean when
every expert writes equally often): only the **selection covariance**, the
second term, lets the mixture beat the experts at tau = 1. It is positive when
experts write more about what they know.

Queries nobody wrote about have no g(i|x) (0/0): they are left out of the
covariance, which is taken over the queries written at least once (the
identity above holds on them). Leaving them in with g = 0 would count "nobody
writes and nobody knows" as selection; with g = 1/n it would dilute the
covariance by the unwritten share. ``queries_written`` says how many there were.
"""

from __future__ import annotations

import numpy as np

from transcend.evaluate.ideal import relation_prior_accuracy
from transcend.experts.panel import ExpertPanel
from transcend.experts.writing import Writing
from transcend.theory import selection_ceiling
from transcend.world.kg import KnowledgeGraph


def writer_shares(writing: Writing, kg: KnowledgeGraph, num_experts: int) -> tuple[np.ndarray, np.ndarray]:
    """g(i|x), (num_experts, num_queries): the share of the sentences answering query x written by
    expert i (0 where x was never written), and the number of sentences per query."""
    nq = len(kg.queries[0])
    q = kg.query_key(writing.sent_head, writing.sent_rel)
    ok = q >= 0
    who = writing.sentence_expert()[ok].astype(np.int64)
    counts = np.bincount(who * nq + q[ok], minlength=num_experts * nq).reshape(num_experts, nq).astype(np.float64)
    writes = counts.sum(axis=0)
    g = np.divide(counts, writes, out=np.zeros_like(counts), where=writes > 0)
    return g, writes.astype(np.int64)


def selection_covariance(g: np.ndarray, r: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """sum_i Cov_x(g(i|x), r_x(f_i)) over the queries in ``mask`` (all by default), with the
    per-expert terms. Covariances are population ones (divided by the number of queries)."""
    g = np.atleast_2d(np.asarray(g, dtype=np.float64))
    r = np.atleast_2d(np.asarray(r, dtype=np.float64))
    if mask is not None:
        g, r = g[:, mask], r[:, mask]
    if g.shape[1] == 0:
        return 0.0, np.zeros(g.shape[0])
    per_expert = (g * r).mean(axis=1) - g.mean(axis=1) * r.mean(axis=1)
    return float(per_expert.sum()), per_expert


def known_correctly(panel: ExpertPanel) -> np.ndarray:
    """Per query: whether at least one expert holds a correct tail for it (from the beliefs, not
    from the experts' scores, which credit guesses where an expert holds nothing)."""
    kg = panel.kg
    q = kg.query_key(panel.heads, panel.rels)
    hit = (q >= 0) & panel.correct
    return np.bincount(q[hit], minlength=len(kg.queries[0])) > 0


def relation_prior_greedy(writing: Writing, kg: KnowledgeGraph) -> np.ndarray:
    """Per query: the accuracy of answering its relation's most written tail (ties split evenly).

    What a learner gets from the corpus's base rates alone, without knowing the head: with
    specialists at alpha near 1 many queries are never written, and a model answers them with
    these priors (0 for relations never written)."""
    nq = len(kg.queries[0])
    return relation_prior_accuracy(np.zeros(writing.num_sentences, np.int64), writing.sent_rel, writing.sent_tail,
                                   kg, np.zeros(nq, np.int64), np.arange(nq), [0.0])[0.0]


def selection_metrics(writing: Writing, panel: ExpertPanel, experts_q: dict[float, np.ndarray],
                      ideal_tau1: np.ndarray, coverage: float, model_greedy: np.ndarray | None = None) -> dict:
    """The selection run's extras: ceiling, known_by_any, selection covariance and its decomposition.

    ``experts_q`` maps temperatures (1.0 among them) to (num_experts, num_queries) accuracy
    (``expert_accuracy``; at tau = 1 it is r_x(f_i) in the covariance, the accuracy of the answers an
    expert writes); ``known_by_any`` counts queries some expert holds a correct tail for; ``ceiling``
    credits those queries 1 and every other query with the corpus's greedy guess from its relation
    (what a learner of the text can do there at best, by the rule every answerer is scored by);
    ``theory_ceiling`` is 1 - (1 - c)^n. ``ideal_tau1`` is the ideal learner's per-query accuracy at
    tau = 1; ``model_greedy`` (optional) the model's per-query greedy accuracy, split into queries
    the corpus wrote and those it never did (where the model can only guess, e.g. from
    ``relation_prior_accuracy``), beside the best expert at its best temperature on each.
    """
    kg, num_experts = panel.kg, panel.num_experts
    g, writes = writer_shares(writing, kg, num_experts)
    written = writes > 0
    r1 = experts_q[1.0]
    cov, per_expert = selection_covariance(g, r1, written)
    gw, rw = g[:, written], r1[:, written]
    prior = relation_prior_greedy(writing, kg)
    known = known_correctly(panel)
    split = {}
    if model_greedy is not None:
        for name, mask in (("written", written), ("unwritten", ~written)):
            split[f"model_greedy_on_{name}"] = float(model_greedy[mask].mean()) if mask.any() else None
            split[f"best_expert_on_{name}"] = (max(float(a[:, mask].mean(axis=1).max()) for a in experts_q.values())
                                               if mask.any() else None)
    return {
        "ceiling": float(np.where(known, 1.0, prior).mean()),
        "theory_ceiling": selection_ceiling(num_experts, coverage),
        "known_by_any": float(known.mean()),
        "selection_covariance": cov,
        "selection": {
            "queries_written": int(written.sum()),
            "share_written": float(written.mean()),
            # On written queries: E_x sum_i g r = sum_i E[g] E[r] + covariance (exact), and the
            # ideal learner at tau = 1 (equal to the first when each expert's writes about x
            # are as accurate as its beliefs about x).
            "writer_weighted_accuracy": float((gw * rw).sum(axis=0).mean()) if written.any() else 0.0,
            "product_of_means": float((gw.mean(axis=1) * rw.mean(axis=1)).sum()) if written.any() else 0.0,
            "ideal_tau1_on_written": float(ideal_tau1[written].mean()) if written.any() else 0.0,
            "relation_prior_accuracy": float(prior.mean()),
            "relation_prior_on_unwritten": float(prior[~written].mean()) if (~written).any() else None,
            **split,
            "covariance_by_expert": [float(v) for v in per_expert],
        },
    }
