"""Three majority votes on the same data (the ``vote`` study).

- **inference-time vote**: draw ``k`` answers from the trained model at τ = 1
  and answer with their plurality (ties split evenly). Entity names are single
  tokens, so a sample is one draw from softmax(logits). Estimated per query by
  ``trials`` seeded Monte Carlo repetitions; the ``k`` samples of a trial are
  the first ``k`` of one shared draw, so the curve over ``k`` is smooth.
  k = 1 is sampling at τ = 1; as k grows it tends to the model's mode.
- **training-time vote**: greedy decoding of the same model (the mode of the
  learnt mixture: the vote the training objective already took).
- **experts' explicit vote**: every expert answers as it is scored alone
  (``evaluate/experts_eval.py``, greedy): one vote, split evenly across its
  modes — of the tails it holds for the query, weighted as it writes them, or
  where it holds none, of the query's relation's tails among its own beliefs. The plurality
  wins, ties split evenly. A query no expert can answer at all gets the most
  common tails of its relation among all the experts' beliefs.
"""

from __future__ import annotations

import numpy as np
import torch

from transcend.corpus.render import prompt_tokens
from transcend.corpus.tokenizer import ENTITY_OFFSET
from transcend.evaluate.ideal import weighted_unique, relation_prior_accuracy
from transcend.evaluate.model_eval import answer_logits
from transcend.experts.panel import ExpertPanel
from transcend.world.kg import KnowledgeGraph


def plurality_correct(answers: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """answers, correct: (N, k). Per row, the probability that the plurality answer is correct
    (ties split evenly among the tied answers)."""
    N, k = answers.shape
    order = np.argsort(answers, axis=1, kind="stable")
    a = np.take_along_axis(answers, order, axis=1)
    c = np.take_along_axis(correct, order, axis=1)
    is_end = np.ones((N, k), dtype=bool)
    is_end[:, :-1] = a[:, 1:] != a[:, :-1]
    is_start = np.ones((N, k), dtype=bool)
    is_start[:, 1:] = is_end[:, :-1]
    pos = np.arange(k)
    start = np.maximum.accumulate(np.where(is_start, pos, 0), axis=1)
    run = np.where(is_end, pos - start + 1, 0)  # each distinct answer's count, at its last slot
    top = run.max(axis=1, keepdims=True)
    tied = run == top
    return (tied & c).sum(axis=1) / tied.sum(axis=1)


def sampled_correct(tokens: np.ndarray, query: np.ndarray, kg: KnowledgeGraph) -> np.ndarray:
    """Whether each sampled token names a correct tail of its query."""
    ent = tokens.astype(np.int64) - ENTITY_OFFSET
    valid = (ent >= 0) & (ent < kg.num_entities)
    qh, qr = kg.queries
    out = np.zeros(tokens.shape, dtype=bool)
    out[valid] = kg.is_fact(qh[query[valid]], qr[query[valid]], ent[valid])
    return out


def inference_vote_accuracy(probs: torch.Tensor, kg: KnowledgeGraph, ks: list[int], trials: int, seed: int
                            ) -> dict[int, np.ndarray]:
    """Per-query accuracy of the plurality of k samples from ``probs`` (Q, V), for each k."""
    Q = probs.shape[0]
    kmax = max(ks)
    gen = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, 0x707E]).generate_state(1)[0]))
    out = {k: np.zeros(Q) for k in ks}
    chunk = max(1, 20000 // (trials * kmax) + 1)
    for lo in range(0, Q, chunk):
        p = probs[lo:lo + chunk]
        n = p.shape[0]
        draws = torch.multinomial(p, trials * kmax, replacement=True, generator=gen).numpy()
        query = np.repeat(np.arange(lo, lo + n), trials * kmax).reshape(n, trials * kmax)
        correct = sampled_correct(draws, query, kg).reshape(n * trials, kmax)
        draws = draws.reshape(n * trials, kmax)
        for k in ks:
            out[k][lo:lo + n] = plurality_correct(draws[:, :k], correct[:, :k]).reshape(n, trials).mean(axis=1)
    return out


def _modes(key: np.ndarray, E: int, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted observations keyed ``group * E + tail``: each group's modes, as (group, tail, 1/ties)."""
    uniq, count = weighted_unique(key, weights)
    grp = uniq // E
    starts = np.flatnonzero(np.r_[True, grp[1:] != grp[:-1]])
    top = np.repeat(np.maximum.reduceat(count, starts), np.diff(np.r_[starts, len(count)]))
    mode = count == top
    ties = np.bincount(np.searchsorted(grp[starts], grp[mode]), minlength=len(starts))
    g, t = grp[mode], uniq[mode] % E
    return g, t, 1.0 / ties[np.searchsorted(grp[starts], g)]


def experts_vote_accuracy(panel: ExpertPanel) -> np.ndarray:
    """Per-query accuracy of the plurality of the experts' own greedy answers (one vote per expert)."""
    kg = panel.kg
    qh, qr = kg.queries
    nq, E, R = len(qh), kg.num_entities, len(kg.relations)
    expert, rels, tails = (panel.expert.astype(np.int64), panel.rels.astype(np.int64), panel.tails.astype(np.int64))
    q = kg.query_key(panel.heads, panel.rels)
    ok = q >= 0
    # Held queries: each expert's modes among the tails it holds for the query.
    wp = panel.write_prob  # an expert's answers weighted as it writes them, as when it is scored alone
    eq, vt, vw = _modes((expert[ok] * nq + q[ok]) * E + tails[ok], E, wp[ok])
    votes_q, votes_t, votes_w = [eq % nq], [vt], [vw]
    # Other queries: each expert's modes among its tails of the query's relation.
    er, rt, rw = _modes((expert * R + rels) * E + tails, E, wp)
    held = np.zeros(panel.num_experts * nq, bool)
    held[eq] = True
    miss = np.flatnonzero(~held)
    miss_er = (miss // nq) * R + qr[miss % nq]
    lo, hi = np.searchsorted(er, miss_er), np.searchsorted(er, miss_er, side="right")
    n = hi - lo
    rows = np.repeat(lo - np.cumsum(n) + n, n) + np.arange(n.sum())
    votes_q.append(np.repeat(miss % nq, n))
    votes_t.append(rt[rows])
    votes_w.append(rw[rows])
    vq, vt, vw = (np.concatenate(v) for v in (votes_q, votes_t, votes_w))
    keys, inv = np.unique(vq * E + vt, return_inverse=True)
    w = np.bincount(inv.ravel(), weights=vw)
    kq, kt = keys // E, keys % E
    top = np.zeros(nq)
    np.maximum.at(top, kq, w)
    tied = w >= top[kq] - 1e-9
    right = kg.is_fact(qh[kq], qr[kq], kt)
    num = np.bincount(kq, weights=tied & right, minlength=nq)
    den = np.bincount(kq, weights=tied, minlength=nq)
    acc = np.divide(num, den, out=np.zeros(nq), where=den > 0)
    nobody = np.flatnonzero(den == 0)
    if len(nobody):
        acc[nobody] = relation_prior_accuracy(np.zeros(len(panel.rels), np.int64), panel.rels, panel.tails, kg,
                                              np.zeros(len(nobody), np.int64), nobody, [0.0])[0.0]
    return acc


def vote_study(model, kg: KnowledgeGraph, tok, panel: ExpertPanel, ks: list[int], trials: int, seed: int,
               device: torch.device) -> dict:
    """All three votes, plus the exact τ = 1 accuracy, as per-k means."""
    logits = answer_logits(model, prompt_tokens(kg, tok, *kg.queries), device)
    probs = torch.softmax(logits.double(), dim=1)
    q_of_edge = torch.from_numpy(kg.edge_query)
    tail_tok = torch.from_numpy(kg.tails.astype(np.int64) + ENTITY_OFFSET)
    nq = len(kg.queries[0])
    tau1 = torch.zeros(nq, dtype=torch.float64).index_add_(0, q_of_edge, probs[q_of_edge, tail_tok]).numpy()
    greedy_tok = logits.argmax(dim=1)
    greedy = torch.zeros(nq, dtype=torch.float64).index_add_(
        0, q_of_edge, (greedy_tok[q_of_edge] == tail_tok).double()).numpy()
    inference = inference_vote_accuracy(probs.float(), kg, ks, trials, seed)
    experts = experts_vote_accuracy(panel)
    # Where the model's correct mass is largest but below 1/2, only large k recovers the mode.
    return {"k": list(ks), "trials": trials,
            "inference_vote": {int(k): float(v.mean()) for k, v in inference.items()},
            "inference_vote_se": {int(k): float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0
                                  for k, v in inference.items()},
            "training_vote": float(greedy.mean()),
            "model_tau1": float(tau1.mean()),
            "experts_vote": float(experts.mean()),
            "mode_share_above_half": float((probs.max(dim=1).values > 0.5).double().mean())}
