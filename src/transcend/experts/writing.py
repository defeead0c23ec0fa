"""Who writes what: experts write paragraphs about entities, one sentence per fact they hold.

The result is structured (which expert wrote which fact, in which paragraph,
in which order); the corpus stage renders it to text and tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transcend.experts.panel import ExpertPanel

# Rounds of redrawing empty paragraphs before the ones still empty are dropped.
MAX_REDRAW_ROUNDS = 10_000


@dataclass
class Writing:
    """Paragraphs (in corpus order) and their sentences (in paragraph order)."""

    para_expert: np.ndarray  # int32, the writer of each paragraph
    para_head: np.ndarray    # int32, the entity each paragraph is about
    sent_para: np.ndarray    # int64, paragraph index of each sentence (non-decreasing)
    sent_head: np.ndarray    # int32
    sent_rel: np.ndarray     # int32
    sent_tail: np.ndarray    # int32

    @property
    def num_paragraphs(self) -> int:
        return len(self.para_expert)

    @property
    def num_sentences(self) -> int:
        return len(self.sent_head)

    def sentence_expert(self) -> np.ndarray:
        return self.para_expert[self.sent_para]


def _expand(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the ranges [start, start+length): returns (index, owner of each index)."""
    owner = np.repeat(np.arange(len(starts)), lengths)
    offsets = np.cumsum(lengths) - lengths
    idx = np.arange(int(lengths.sum())) - np.repeat(offsets, lengths) + np.repeat(starts, lengths)
    return idx, owner


def paragraph_groups(panel: ExpertPanel) -> np.ndarray:
    """Where each group of beliefs sharing (expert, head) starts -- the facts of one possible paragraph
    (a panel's beliefs are sorted by expert, then head)."""
    key = panel.expert.astype(np.int64) * panel.kg.num_entities + panel.heads
    return np.flatnonzero(np.r_[True, key[1:] != key[:-1]])


def nonempty_chance(panel: ExpertPanel, first: np.ndarray) -> np.ndarray:
    """Per group of beliefs (starting at ``first``, from ``paragraph_groups``): the chance that a paragraph
    about it is not empty, 1 - prod(1 - write_prob), exactly 1 where a belief is always written."""
    wp = np.asarray(panel.write_prob, np.float64)
    nonempty = 1 - np.exp(np.add.reduceat(np.log1p(-np.minimum(wp, 1 - 1e-12)), first))
    nonempty[np.add.reduceat(wp >= 1, first) > 0] = 1.0
    return nonempty


def sentences_per_paragraph(panel: ExpertPanel, expert_weights: np.ndarray | None = None) -> float:
    """The expected sentences of a paragraph of ``write_paragraphs`` (experts weighted as there).

    An expert's paragraph is one of its groups, drawn in proportion to the chance that it is not empty,
    each belief written with its ``write_prob``: it holds on average sum(write_prob) / sum(P(not empty))
    sentences over the expert's groups. 0 when no expert can write anything."""
    first = paragraph_groups(panel)
    wp = np.asarray(panel.write_prob, np.float64)
    written = np.add.reduceat(wp, first)
    nonempty = nonempty_chance(panel, first)
    e, n = panel.expert[first], panel.num_experts
    s_e, p_e = np.bincount(e, written, n), np.bincount(e, nonempty, n)
    weights = np.ones(n) if expert_weights is None else np.asarray(expert_weights, np.float64)
    ok = p_e > 0
    return float(np.average(s_e[ok] / p_e[ok], weights=weights[ok])) if ok.any() else 0.0


def write_paragraphs(panel: ExpertPanel, num_paragraphs: int, seed: int,
                     expert_weights: np.ndarray | None = None) -> Writing:
    """``num_paragraphs`` paragraphs split evenly across experts (or by ``expert_weights``).

    Each paragraph: the expert samples one entity uniformly among those it holds
    facts about, then writes each of that entity's facts with the fact's
    ``write_prob``, in random order. Paragraphs are shuffled across experts.

    A paragraph in which nothing was written is drawn again, entity and facts,
    until something is written (rejection sampling). This is the same as
    sampling the entity in proportion to the chance that its paragraph is not
    empty, 1 - prod(1 - write_prob), and writing its facts conditioned on at
    least one: the expected number of times an expert writes a fact stays
    proportional to the fact's ``write_prob`` (the writing model of skill
    selection, alpha * s + 1 - alpha, is kept exactly), and every expert
    writes its full share of non-empty paragraphs whatever alpha is. (Weighting
    entities by their expected written facts instead would write a fact at a
    rate proportional to write_prob times its entity's expected facts, and
    still leave empty paragraphs.) When every ``write_prob`` is 1 (denoising)
    no paragraph is empty, no draw is repeated and the sampling is the plain
    uniform one. An expert that can write nothing (every ``write_prob`` 0)
    writes no paragraphs; slots still empty after ``MAX_REDRAW_ROUNDS`` rounds
    are dropped.
    """
    rng = np.random.default_rng([seed, 0x5752])  # stream reserved for writing
    n = panel.num_experts
    if expert_weights is None:
        per_expert = np.full(n, num_paragraphs // n) + (np.arange(n) < num_paragraphs % n)
    else:
        w = np.asarray(expert_weights, dtype=np.float64)
        per_expert = rng.multinomial(num_paragraphs, w / w.sum())

    boundary = paragraph_groups(panel)
    group_len = np.diff(np.r_[boundary, len(panel.heads)])
    group_expert = panel.expert[boundary]
    first_group = np.searchsorted(group_expert, np.arange(n))
    groups_per_expert = np.searchsorted(group_expert, np.arange(n), side="right") - first_group
    per_expert = np.where(groups_per_expert > 0, per_expert, 0)

    para_expert = np.repeat(np.arange(n, dtype=np.int32), per_expert)
    para_expert = para_expert[rng.permutation(len(para_expert))]
    pick = (rng.random(len(para_expert)) * groups_per_expert[para_expert]).astype(np.int64)
    group = first_group[para_expert] + pick

    belief, para = _expand(boundary[group], group_len[group])
    written = rng.random(len(belief)) < panel.write_prob[belief]
    belief, para = belief[written], para[written]

    # Redraw empty paragraphs (entity and facts) until something is written; none in denoising.
    can_write = np.bincount(panel.expert, weights=panel.write_prob > 0, minlength=n) > 0
    filled = np.zeros(len(para_expert), dtype=bool)
    filled[para] = True
    todo = np.flatnonzero(~filled & can_write[para_expert])
    beliefs, paras = [belief], [para]
    for _ in range(MAX_REDRAW_ROUNDS):
        if len(todo) == 0:
            break
        e = para_expert[todo]
        g = first_group[e] + (rng.random(len(todo)) * groups_per_expert[e]).astype(np.int64)
        b, owner = _expand(boundary[g], group_len[g])
        w = rng.random(len(b)) < panel.write_prob[b]
        b, owner = b[w], owner[w]
        hit = np.zeros(len(todo), dtype=bool)
        hit[owner] = True
        group[todo[hit]] = g[hit]
        beliefs.append(b)
        paras.append(todo[owner])
        todo = todo[~hit]
    if len(beliefs) > 1:
        belief, para = np.concatenate(beliefs), np.concatenate(paras)
    order = np.lexsort((rng.random(len(belief)), para))  # random order inside each paragraph
    belief, para = belief[order], para[order]

    kept, sent_para = np.unique(para, return_inverse=True)  # drop empty paragraphs, renumber
    return Writing(
        para_expert=para_expert[kept].astype(np.int32),
        para_head=panel.heads[boundary[group[kept]]].astype(np.int32),
        sent_para=sent_para.astype(np.int64),
        sent_head=panel.heads[belief], sent_rel=panel.rels[belief], sent_tail=panel.tails[belief],
    )
