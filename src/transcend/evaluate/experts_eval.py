"""Each expert's own accuracy, by the one scoring rule every answerer is scored by.

An expert is a distribution over answers per query: the distribution it writes
from, f_i(y|x) of the theory — the tails it holds for the query (its beliefs),
each weighted by the probability that it writes it (1 in denoising; in
selection alpha * s + 1 - alpha, so that at alpha = 1 an expert answers only
from what it knows, as its text does). Decoded exactly as the model and the ideal
learner are (``decoded_accuracy``): at temperature tau its distribution raised
to 1/tau and renormalised, at tau = 0 its mode with ties split. An expert that
holds nothing for a query (its fact lost its head to a corruption, or lies
outside what it knows) still answers, as a language model trained on its text
would: from its own (write-weighted) distribution of the relation's tails,
decoded the same way. With one expert the ideal learner of its corpus is then
that expert, up to the corpus's sampling noise.
Scoring such queries by sampling while the model answers greedily would let a
model beat a single expert merely by decoding popular answers more sharply.

The best expert, against which a gap is measured, is the best expert at its
best temperature (``best_expert``).
"""

from __future__ import annotations

import numpy as np

from transcend.evaluate.ideal import decoded_accuracy
from transcend.experts.panel import ExpertPanel


def expert_accuracy(panel: ExpertPanel, temperatures: list[float] = (0.0,)) -> dict[float, np.ndarray]:
    """Per temperature, (num_experts, num_queries): each expert's probability of naming a correct tail."""
    return decoded_accuracy(panel.expert, panel.heads, panel.rels, panel.tails, panel.kg, list(temperatures),
                            panel.num_experts, weights=panel.write_prob)


def best_expert(experts_q: dict[float, np.ndarray]) -> tuple[int, float, float, np.ndarray]:
    """(expert, tau, accuracy, per-query accuracy) of the best expert at its best temperature
    (ties: the lowest temperature, then the lowest expert)."""
    taus = sorted(experts_q)
    means = np.array([experts_q[t].mean(axis=1) for t in taus])  # (taus, experts)
    j, i = np.unravel_index(int(np.argmax(means)), means.shape)
    return int(i), float(taus[j]), float(means[j, i]), experts_q[taus[j]][i]


def stacked(experts_q: dict[float, np.ndarray]) -> np.ndarray:
    """Every (expert, temperature) as one row: the candidates a bootstrap re-picks the best among."""
    return np.concatenate([experts_q[t] for t in sorted(experts_q)], axis=0)
