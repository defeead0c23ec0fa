"""How far a model is from its data: the fit gap.

The ideal learner answers a written query x with the corpus's mixture f̄(y|x). An answerer that reads
only the query's relation can at best answer with the relation's tails pooled over every head, p_r(y).
The fit gap is the model's excess loss on the corpus's answers over the ideal learner's, as a share of
that relation-only answer's excess loss:

    gap = Σ n(x, y) log(f̄(y|x) / p_model(y|x))  /  Σ n(x, y) log(f̄(y|x) / p_r(y))

summed over the corpus's written (query, answer) pairs, n their counts. 0: the model is its data's
mixture; 1: it knows no more about an answer than its relation tells (what a head-blind model learns
first: on a graph where the relation alone answers well, greedy accuracy hides such a model). The model's
probabilities are over its whole vocabulary, so mass on a token that is no entity counts as lost.

It is computed from the training corpus alone, never from the graph's facts: a learner may check it on
its own data to decide whether to train on (``learner.train.optimize``).
"""

from __future__ import annotations

import numpy as np
import torch
from tokenizers import Tokenizer

from transcend.corpus.render import prompt_tokens
from transcend.corpus.tokenizer import ENTITY_OFFSET
from transcend.evaluate.ideal import answer_counts
from transcend.evaluate.model_eval import answer_logits
from transcend.experts.writing import Writing
from transcend.world.kg import KnowledgeGraph


class FitGap:
    """``FitGap(kg, tok, writing, device)(model)``: the fit gap of a lab GPT (single-token entity names,
    the lab's tokenizer ``tok``) on the corpus that ``writing`` wrote. ``relation_only_nats``: the
    relation-only answer's excess loss per written answer (0 where heads tell nothing: the gap is then 0)."""

    def __init__(self, kg: KnowledgeGraph, tok: Tokenizer, writing: Writing, device: torch.device):
        q, t, c = answer_counts(writing, kg)
        written, self.row = np.unique(q, return_inverse=True)
        qh, qr = kg.queries
        self.prompts = prompt_tokens(kg, tok, qh[written], qr[written])
        self.tail, self.count, self.device = t + ENTITY_OFFSET, c.astype(np.float64), device
        per_query = np.bincount(self.row, weights=self.count)
        log_mix = np.log(self.count / per_query[self.row])
        R, E = len(kg.relations), kg.num_entities
        rel = qr[q]
        pooled = np.bincount(rel * E + t, weights=self.count, minlength=R * E)
        per_rel = np.bincount(rel, weights=self.count, minlength=R)
        self.log_mix, total = log_mix, self.count.sum()
        self.relation_only_nats = float((self.count * (log_mix - np.log(pooled[rel * E + t] / per_rel[rel])))
                                        .sum() / total)
        self.total = total

    def excess_nats(self, model) -> float:
        """The model's excess loss per written answer over the ideal learner's (nats)."""
        was_training = model.training
        logp = torch.log_softmax(answer_logits(model, self.prompts, self.device).double(), dim=1)
        model.train(was_training)
        lp = logp[torch.from_numpy(self.row), torch.from_numpy(self.tail.astype(np.int64))].numpy()
        return float((self.count * (self.log_mix - lp)).sum() / self.total)

    def __call__(self, model) -> float:
        if self.relation_only_nats <= 1e-9:
            return 0.0
        return self.excess_nats(model) / self.relation_only_nats
