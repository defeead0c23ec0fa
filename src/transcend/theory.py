"""Closed forms and exact simulations of what the measurements should show.

Denoising (majority vote). For one query, each of ``n`` experts holds the
correct answer with probability ``c``, a wrong one with probability ``w``
(uniform over the ``K - 1`` other candidates of the same type), or no answer
at all (it never writes about the query). The query is written ``m`` times,
each time by an expert drawn uniformly among those holding an answer. The
ideal learner's greedy answer is the plurality of those ``m`` answers (ties
split evenly). There is no simple closed form for the plurality of such a
mixture, so we simulate this model exactly by Monte Carlo with a seeded
generator, grouped by distinct (m, K, w).

In the lab's corruption model a fact is lost with its head swapped (the
expert holds no answer: probability (1 - c) / 2) or turned wrong with its tail
swapped ((1 - c) / 2), and head swaps elsewhere bring in wrong answers at rate
(1 - c) / 2 * phi, phi being the share of the relation's possible heads that
hold it; so ``w = (1 - c) / 2 * (1 + phi)``. ``w = 1 - c`` is the plain model
in which every expert answers. It is a reference, not a fit: wrong tails in the
lab lean toward hubs, which the uniform wrong answers here do not.

Selection. The ceiling 1 - (1 - c)^n (a fact no expert knows cannot be learnt
from their text), and the same vote with writers weighted by what they know:
an expert writes a fact it knows with weight 1 and a wrong answer with weight
1 - alpha (``selection_vote_accuracy``), which also gives the mixture's
accuracy at tau = 1.

The ideal learner (``plurality_accuracy``). Not an abstract vote: the corpus
drawn as ``experts/writing.py`` writes it, from the panel's own beliefs -- per
(expert, head) a binomial number of paragraphs, each writing all the expert's
beliefs about the query at once -- decoded as the ideal learner decodes it.
"""

from __future__ import annotations

import numpy as np


def _plurality_correct(answers: np.ndarray, writer: np.ndarray) -> np.ndarray:
    """answers: (T, n) expert answers (0 = correct, -1 = none); writer: (T, m) expert of each write.
    Returns (T,) probability that the plurality of the written answers is correct."""
    T, n = answers.shape
    m = writer.shape[1]
    if m == 0:
        return np.zeros(T)
    votes = np.zeros(T * n)
    np.add.at(votes, (np.arange(T)[:, None] * n + writer).ravel(), 1.0)
    return _plurality_from_votes(answers, votes.reshape(T, n))


def _plurality_from_votes(answers: np.ndarray, votes: np.ndarray) -> np.ndarray:
    """answers: (T, n) expert answers (0 = correct, -1 = none); votes: (T, n) writes of each expert.
    Returns (T,) probability that the plurality of the written answers is correct."""
    T, n = answers.shape
    order = np.argsort(answers, axis=1, kind="stable")
    a = np.take_along_axis(answers, order, axis=1)
    v = np.take_along_axis(votes, order, axis=1)
    cs = np.cumsum(v, axis=1)
    is_start = np.ones((T, n), dtype=bool)
    is_start[:, 1:] = a[:, 1:] != a[:, :-1]
    is_end = np.ones((T, n), dtype=bool)
    is_end[:, :-1] = is_start[:, 1:]
    start = np.maximum.accumulate(np.where(is_start, np.arange(n), 0), axis=1)
    before = np.where(start > 0, np.take_along_axis(cs, np.maximum(start - 1, 0), axis=1), 0.0)
    seg = np.where(is_end, cs - before, -1.0)  # votes of each distinct answer, at its last slot
    right = np.where(a == 0, v, 0.0).sum(axis=1)
    wrong_seg = np.where(a > 0, seg, -1.0)
    best_wrong = wrong_seg.max(axis=1)
    ties = (wrong_seg == best_wrong[:, None]).sum(axis=1)
    win = (right > best_wrong).astype(float)
    tie = (right == best_wrong) & (right > 0)
    return np.where(tie, 1.0 / (1 + ties), win)


def _query_groups(c: float, writes: np.ndarray, candidates: np.ndarray, wrong: np.ndarray | float | None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (writes m, candidates K, wrong rate in 1e-4 units) and each query's group index.

    Queries in one group share one simulation; rates are rounded to 1e-4 so that
    float noise does not split groups. ``wrong`` defaults to 1 - c.
    """
    writes = np.asarray(writes, dtype=np.int64)
    candidates = np.maximum(np.asarray(candidates, dtype=np.int64), 2)
    wrong = np.broadcast_to(np.asarray(1 - c if wrong is None else wrong, dtype=np.float64), writes.shape)
    keys = np.stack([writes, candidates, np.round(wrong * 1e4).astype(np.int64)], axis=1)
    groups, inverse = np.unique(keys, axis=0, return_inverse=True)
    return groups, inverse.ravel()


def denoising_wrong_rate(coverage: float, heads_holding_share: np.ndarray | float) -> np.ndarray:
    """Probability that an expert holds a wrong answer to a query, in the lab's corruption model."""
    return np.minimum((1 - coverage) / 2 * (1 + np.asarray(heads_holding_share, dtype=np.float64)), 1 - coverage)


def majority_vote_accuracy(n: int, c: float, writes: np.ndarray, candidates: np.ndarray,
                           wrong: np.ndarray | float | None = None, seed: int = 0, trials: int = 2000,
                           rho: float = 0.0) -> np.ndarray:
    """Per-query probability that the plurality of ``writes[q]`` written answers is correct.

    ``candidates[q]`` is the number of entities that could fill the answer slot (K);
    ``wrong[q]`` the probability that an expert holds a wrong answer (default ``1 - c``);
    ``rho`` the probability that a wrong answer is the one misconception all experts share
    (else an independent uniform one), as in correlated experts.
    """
    out = np.zeros(len(writes))
    groups, inverse = _query_groups(c, writes, candidates, wrong)
    for g, (m, K, w4) in enumerate(groups):
        if m == 0:
            continue  # nothing written: no answer
        rng = np.random.default_rng([seed, 0x7E0, int(m), int(K), int(w4)])
        u = rng.random((trials, n))
        wrong_answer = 1 + rng.integers(0, K - 1, size=(trials, n))
        if rho > 0:  # a separate stream: rho = 0 draws exactly what it drew before
            shared_rng = np.random.default_rng([seed, 0x7E3, int(m), int(K), int(w4)])
            shared = 1 + shared_rng.integers(0, K - 1, size=(trials, 1))
            wrong_answer = np.where(shared_rng.random((trials, n)) < rho, shared, wrong_answer)
        answers = np.where(u < c, 0, np.where(u < c + w4 / 1e4, wrong_answer, -1))
        holders = answers >= 0
        n_holders = holders.sum(axis=1)
        # Writers are uniform among the experts holding an answer (holders sorted first).
        order = np.argsort(~holders, axis=1, kind="stable")
        pick = (rng.random((trials, int(m))) * np.maximum(n_holders, 1)[:, None]).astype(np.int64)
        writer = np.take_along_axis(order, pick, axis=1)
        acc = _plurality_correct(answers, writer)
        # Trials where nobody holds an answer cannot produce m > 0 writes: condition them away.
        ok = n_holders > 0
        out[inverse == g] = acc[ok].mean() if ok.any() else 0.0
    return out


def majority_vote_limit(n: int, c: float, candidates: int = 10**6, seed: int = 0, trials: int = 20000,
                        rho: float = 0.0) -> float:
    """The vote over the experts' own answers (m -> infinity, every expert weighed equally);
    ``rho``: the probability that a wrong answer is the misconception all experts share."""
    rng = np.random.default_rng([seed, 0x7E1])
    ok = rng.random((trials, n)) < c
    answers = np.where(ok, 0, 1 + rng.integers(0, candidates - 1, size=(trials, n)))
    if rho > 0:
        shared_rng = np.random.default_rng([seed, 0x7E4])
        answers = np.where(ok | (shared_rng.random((trials, n)) >= rho), answers, candidates)  # the shared one
    writer = np.tile(np.arange(n), (trials, 1))
    return float(_plurality_correct(answers, writer).mean())


def selection_ceiling(n: int, c: float) -> float:
    """Share of facts known by at least one of ``n`` experts who each know a share ``c``,
    independently: 1 - (1 - c)^n. No learner of the experts' text can do better."""
    return float(1.0 - (1.0 - c) ** n)


def selection_vote_accuracy(n: int, c: float, alpha: float, writes: np.ndarray, candidates: np.ndarray,
                            wrong: np.ndarray | float | None = None, seed: int = 0, trials: int = 2000
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Skill selection's estimate: per query, the probability that the plurality of ``writes[q]``
    writes is correct (greedy) and the expected correct share of the writes (tau = 1).

    The denoising vote with writers weighted by what they know: each of ``n`` experts knows the
    fact (correct answer) with probability ``c``, holds a wrong answer with probability
    ``wrong[q]`` (uniform over the ``K - 1`` other candidates) or none. An expert who knows the
    fact writes it with weight 1 (alpha * 1 + 1 - alpha); one who holds a wrong answer writes it
    with weight ``1 - alpha`` (alpha * 0 + 1 - alpha). Each of the ``writes[q]`` writes goes to an
    expert drawn in proportion to these weights. Trials in which no expert has any weight cannot
    produce writes and are conditioned away. alpha = 0 is :func:`majority_vote_accuracy`'s model
    (drawn differently); alpha = 1 gives 1 wherever anything was written. Like that one, a
    reference, not a fit: the lab's experts know whole clusters (s is 0/1), so each query's
    knowers are independent across experts only through their random choice of clusters.
    """
    greedy, share = np.zeros(len(writes)), np.zeros(len(writes))
    groups, inverse = _query_groups(c, writes, candidates, wrong)
    for g, (m, K, w4) in enumerate(groups):
        if m == 0:
            continue  # nothing written: no answer
        rng = np.random.default_rng([seed, 0x7E2, int(m), int(K), int(w4)])
        w = min(w4 / 1e4, 1.0 - c)
        # Per trial: how many experts know the fact, hold a wrong answer, hold none.
        knows, errs, _ = rng.multinomial(n, [c, w, max(1.0 - c - w, 0.0)], size=trials).T
        total = knows + (1.0 - alpha) * errs
        ok = total > 0
        if not ok.any():
            continue
        knows, errs, total = knows[ok], errs[ok], total[ok]
        T = len(knows)
        wrong_answers = 1 + rng.integers(0, K - 1, size=(T, n))  # column j: the j-th wrong holder's answer
        right = rng.random((T, int(m))) < (knows / total)[:, None]
        holder = (rng.random((T, int(m))) * np.maximum(errs, 1)[:, None]).astype(np.int64)
        written = np.where(right, 0, np.take_along_axis(wrong_answers, holder, axis=1))
        greedy[inverse == g] = _plurality_from_votes(written, np.ones(written.shape)).mean()
        share[inverse == g] = right.mean()
    return greedy, share


# --- the ideal learner's theory: the plurality of what the panel writes ---------------------------

def belief_write_rates(panel, num_paragraphs: int) -> np.ndarray:
    """Expected number of times each belief is written in a corpus of ``num_paragraphs`` paragraphs.

    The writing model (``experts/writing.py``): expert i writes P_i = its share of the paragraphs,
    each about one of its heads drawn uniformly, redrawn until something is written, each belief
    written with its ``write_prob``; so belief b of expert i is written P_i * write_prob_b / S_i
    times, S_i = sum over its heads of 1 - prod(1 - write_prob) (the heads that can fill a paragraph).
    """
    n = panel.num_experts
    share = np.full(n, num_paragraphs // n) + (np.arange(n) < num_paragraphs % n)
    key = panel.expert.astype(np.int64) * panel.kg.num_entities + panel.heads
    _, group = np.unique(key, return_inverse=True)
    group = group.ravel()
    log_empty = np.bincount(group, weights=np.log1p(-np.minimum(panel.write_prob, 1 - 1e-12)))
    group_expert = np.zeros(len(log_empty), np.int64)
    group_expert[group] = panel.expert
    fill = np.bincount(group_expert, weights=1.0 - np.exp(log_empty), minlength=n)
    rate = share[panel.expert] * panel.write_prob / np.where(fill > 0, fill, 1.0)[panel.expert]
    return np.where(fill[panel.expert] > 0, rate, 0.0)


def _writer_units(panel, num_paragraphs: int):
    """The writing model per belief, arranged by query: who can write it, how often, and with what.

    In ``write_paragraphs`` expert i writes P_i paragraphs (its even share), each about one of its
    (expert, head) groups g drawn with probability pi_g = ne_g / sum of ne over its groups (ne_g =
    1 - prod(1 - write_prob), the chance that g's paragraph is not empty; 1/G_i in denoising), so the
    number of paragraphs about g is N_g ~ Binomial(P_i, pi_g), independently across experts. Each of
    those paragraphs writes belief b with probability q_b = write_prob_b / ne_g (given not empty).
    Returns, for the beliefs that can answer a query (sorted by query, then group): their query, a
    writer-unit index (one per (query, group)), the unit's P and pi, q_b, and the tail.
    """
    from transcend.experts.writing import nonempty_chance, paragraph_groups

    kg, n = panel.kg, panel.num_experts
    first = paragraph_groups(panel)
    glen = np.diff(np.r_[first, len(panel.heads)])
    group = np.repeat(np.arange(len(first)), glen)
    wp = np.asarray(panel.write_prob, np.float64)
    nonempty = nonempty_chance(panel, first)
    g_expert = panel.expert[first].astype(np.int64)
    total = np.bincount(g_expert, weights=nonempty, minlength=n)
    pi = np.divide(nonempty, total[g_expert], out=np.zeros(len(first)), where=total[g_expert] > 0)
    share = np.full(n, num_paragraphs // n) + (np.arange(n) < num_paragraphs % n)
    q = kg.query_key(panel.heads, panel.rels)
    ok = (q >= 0) & (wp > 0) & (pi[group] > 0)
    idx = np.flatnonzero(ok)
    idx = idx[np.lexsort((group[idx], q[idx]))]
    bq, bg = q[idx], group[idx]
    new_unit = np.r_[True, (bq[1:] != bq[:-1]) | (bg[1:] != bg[:-1])]
    unit = np.cumsum(new_unit) - 1
    ug = bg[new_unit]
    qb = np.minimum(wp[idx] / np.maximum(nonempty[bg], 1e-300), 1.0)
    return bq, unit, share[g_expert[ug]], pi[ug], qb, panel.tails[idx]


def plurality_accuracy(panel, num_paragraphs: int, temperatures: list[float], seed: int = 0,
                       trials: int = 400) -> dict[float, np.ndarray]:
    """Per query, the expected accuracy of the ideal learner of a corpus of ``num_paragraphs``
    paragraphs written by ``panel``: the expectation over corpora, from the graph, the panel and the
    writing model alone (no count of the run's corpus is read).

    The counts are drawn from the writing model itself (``_writer_units``): per (expert, head) group
    a Binomial(P_i, pi_g) number of paragraphs, independent across experts, each writing every belief
    of the group about the query with its chance q_b -- so one expert's writes about a query come
    together (all its tails for the query, and a belief it holds twice, twice per paragraph), as in
    the corpus. Each draw is decoded as the ideal learner decodes the corpus (tau = 0: the most written
    tails, ties split; else count^(1/tau) shares; credit for any correct tail); a draw that leaves the
    query unwritten gets the guess of the corpus's expected distribution of the relation's tails,
    decoded the same way. Monte Carlo over ``trials`` seeded draws per query (the count^(1/tau) share
    of a sum of per-expert blocks has no simple closed form; the per-query Monte Carlo error is
    averaged away over the queries, about 0.0003 on the default world's mean). Exact in law where
    q_b = 1 (denoising: every paragraph about a head writes all its beliefs); where q_b < 1
    (selection, alpha < 1) a paragraph's beliefs are drawn independently, ignoring that an empty
    paragraph is redrawn.
    """
    from transcend.evaluate.ideal import relation_prior_accuracy

    kg = panel.kg
    qh, qr = kg.queries
    nq, E = len(qh), kg.num_entities
    rate = belief_write_rates(panel, num_paragraphs)
    prior = relation_prior_accuracy(np.zeros(len(rate), np.int64), panel.rels, panel.tails, kg,
                                    np.zeros(nq, np.int64), np.arange(nq), temperatures, weights=rate)
    out = {tau: prior[tau].copy() for tau in temperatures}
    bq, bunit, uP, upi, qb, btail = _writer_units(panel, num_paragraphs)
    if len(bq) == 0:
        return out
    # Per query: its beliefs (slots b), writer units (u) and distinct tails (k).
    bstart = np.searchsorted(bq, np.arange(nq + 1))
    ufirst = np.r_[0, np.flatnonzero(np.diff(bunit)) + 1]
    uq = bq[ufirst]
    ustart = np.searchsorted(uq, np.arange(nq + 1))
    tkey = bq.astype(np.int64) * E + btail
    tkeys = np.unique(tkey)
    tslot_global = np.searchsorted(tkeys, tkey)
    tq = tkeys // E
    tstart = np.searchsorted(tq, np.arange(nq + 1))
    right = kg.is_fact(qh[tq], qr[tq], tkeys % E)
    nb, nu, nk = np.diff(bstart), np.diff(ustart), np.diff(tstart)
    live = np.flatnonzero(nb > 0)
    rng = np.random.default_rng([seed, 0x7E6])
    budget = 2_000_000
    i = 0
    while i < len(live):
        # A chunk of queries of similar size, padded to its largest.
        B = U = K = 1
        j = i
        while j < len(live):
            x = live[j]
            B2, U2, K2 = max(B, nb[x]), max(U, nu[x]), max(K, nk[x])
            if j > i and (j - i + 1) * trials * max(B2, U2, K2) > budget:
                break
            B, U, K = B2, U2, K2
            j += 1
        idx = live[i:j]
        i = j
        Q = len(idx)
        sb, su = np.arange(B)[None, :], np.arange(U)[None, :]
        bmask, umask = sb < nb[idx][:, None], su < nu[idx][:, None]
        bpos = np.where(bmask, bstart[idx][:, None] + sb, 0)
        upos = np.where(umask, ufirst[np.minimum(ustart[idx][:, None] + su, len(ufirst) - 1)], 0)
        P = np.where(umask, uP[bunit[upos]], 0)
        pi = np.where(umask, upi[bunit[upos]], 0.0)
        b_unit = np.where(bmask, bunit[bpos] - bunit[upos[:, 0]][:, None], 0)
        b_q = np.where(bmask, qb[bpos], 0.0)
        b_slot = np.where(bmask, tslot_global[bpos] - tstart[idx][:, None], 0)
        kmask = np.arange(K)[None, :] < nk[idx][:, None]
        corr = np.where(kmask, right[np.where(kmask, tstart[idx][:, None] + np.arange(K)[None, :], 0)], False)
        onehot = np.zeros((Q, B, K))
        np.put_along_axis(onehot, b_slot[:, :, None], bmask[:, :, None].astype(np.float64), axis=2)
        every = bool((b_q[bmask] >= 1).all())  # each paragraph writes all of its unit's beliefs (denoising)
        if every:  # a unit's sentences per paragraph, by tail
            per_unit = np.zeros((Q, U, K))
            np.add.at(per_unit, (np.arange(Q)[:, None].repeat(B, 1), b_unit), onehot)
        N = rng.binomial(P[:, None, :], pi[:, None, :], size=(Q, trials, U))  # paragraphs per unit
        if every:
            c = np.matmul(N.astype(np.float64), per_unit)  # (Q, trials, K) sentences naming each tail
        else:
            Nb = np.take_along_axis(N, b_unit[:, None, :].repeat(trials, 1), axis=2)
            c = np.matmul(rng.binomial(Nb, b_q[:, None, :]).astype(np.float64), onehot)
        top = c.max(axis=2, keepdims=True)
        for tau in temperatures:
            if tau == 0:
                wt = ((c == top) & (c > 0)).astype(np.float64)
            else:
                wt = np.where(c > 0, np.exp((np.log(np.maximum(c, 1)) - np.log(np.maximum(top, 1))) / tau), 0.0)
            den = wt.sum(axis=2)
            score = np.where(den > 0, (wt * corr[:, None, :]).sum(axis=2) / np.maximum(den, 1e-300),
                             prior[tau][idx][:, None])
            out[tau][idx] = score.mean(axis=1)
    return out
