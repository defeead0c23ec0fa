"""Closed forms and exact simulations of what the measurements should show.

Denoising (majority vote). Each of ``n`` experts answers a query correctly with
probability ``c``; otherwise it holds one wrong answer, uniform over the
``K - 1`` other candidates of the same type. The query is written ``m`` times,
each time by an expert drawn uniformly. The ideal learner's greedy answer is
the plurality of those ``m`` answers (ties split evenly). We simulate this
model exactly by Monte Carlo with a seeded generator (there is no simple
closed form for the plurality of a multinomial mixture), grouped by distinct
(m, K). It abstracts the lab's corruptions (head swaps move a fact to another
entity, tails are skewed toward hubs), so it is a reference, not a fit.
"""

from __future__ import annotations

import numpy as np


def _plurality_correct(answers: np.ndarray, writer: np.ndarray) -> np.ndarray:
    """answers: (T, n) expert answers (0 = correct); writer: (T, m) expert of each write.
    Returns (T,) probability that the plurality of the written answers is correct."""
    T, n = answers.shape
    m = writer.shape[1]
    if m == 0:
        return np.zeros(T)
    votes = np.zeros(T * n)
    np.add.at(votes, (np.arange(T)[:, None] * n + writer).ravel(), 1.0)
    votes = votes.reshape(T, n)
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
    wrong_seg = np.where(a != 0, seg, -1.0)
    best_wrong = wrong_seg.max(axis=1)
    ties = (wrong_seg == best_wrong[:, None]).sum(axis=1)
    win = (right > best_wrong).astype(float)
    tie = (right == best_wrong) & (right > 0)
    return np.where(tie, 1.0 / (1 + ties), win)


def majority_vote_accuracy(n: int, c: float, writes: np.ndarray, candidates: np.ndarray,
                           seed: int = 0, trials: int = 2000) -> np.ndarray:
    """Per-query probability that the plurality of ``writes[q]`` written answers is correct.

    ``candidates[q]`` is the number of entities that could fill the answer slot (K).
    """
    writes = np.asarray(writes, dtype=np.int64)
    candidates = np.maximum(np.asarray(candidates, dtype=np.int64), 2)
    out = np.zeros(len(writes))
    pairs, inverse = np.unique(np.stack([writes, candidates], axis=1), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    for g, (m, K) in enumerate(pairs):
        rng = np.random.default_rng([seed, 0x7E0, int(m), int(K)])
        ok = rng.random((trials, n)) < c
        wrong = 1 + rng.integers(0, K - 1, size=(trials, n))
        answers = np.where(ok, 0, wrong)
        writer = rng.integers(0, n, size=(trials, int(m)))
        out[inverse == g] = _plurality_correct(answers, writer).mean()
    return out


def majority_vote_limit(n: int, c: float, candidates: int = 10**6, seed: int = 0, trials: int = 20000) -> float:
    """The vote over the experts' own answers (m -> infinity, every expert weighed equally)."""
    rng = np.random.default_rng([seed, 0x7E1])
    ok = rng.random((trials, n)) < c
    answers = np.where(ok, 0, 1 + rng.integers(0, candidates - 1, size=(trials, n)))
    writer = np.tile(np.arange(n), (trials, 1))
    return float(_plurality_correct(answers, writer).mean())
