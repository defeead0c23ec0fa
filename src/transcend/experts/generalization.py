"""Skill generalization: each expert knows one area of expertise, exactly, and nothing else.

* **Experts.** The edges are clustered as in skill selection; expert i holds
  the edges of cluster i, without errors, and writes only those (a paragraph
  about an entity holds that entity's facts in the expert's cluster). Experts
  write in proportion to their cluster's size.
* **Two-hop facts.** A path a -r1-> b -r2-> c is *within-expertise* when both
  edges lie in one cluster, *across-expertise* otherwise. The training set
  takes ``train`` within-expertise facts (after ``validation`` are held out);
  the test set is every across-expertise fact, never trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transcend.errors import TranscendError
from transcend.experts.selection import SelectionPanel, load_or_cluster
from transcend.world.kg import KnowledgeGraph
from transcend.world.two_hop import TwoHopFacts, two_hop_facts


@dataclass
class GeneralizationPanel(SelectionPanel):
    """One expert per cluster (``skills`` is the identity), with the two-hop splits."""

    two_hop: TwoHopFacts | None = None
    split: np.ndarray | None = None  # per two-hop fact: 0 train, 1 validation, 2 test, -1 unused

    @property
    def cluster_sizes(self) -> np.ndarray:
        return np.bincount(self.areas, minlength=self.num_clusters)


SPLIT_TRAIN, SPLIT_VALIDATION, SPLIT_TEST, SPLIT_UNUSED = 0, 1, 2, -1


def generalization_panel(kg: KnowledgeGraph, num_experts: int, train: int, validation: int, seed: int,
                         cache_dir: Path | None = None) -> GeneralizationPanel:
    """``num_experts`` experts, one per cluster of the edges, and the split of the two-hop facts.

    Raises ``TranscendError`` if ``train + validation`` exceeds the within-expertise facts.
    """
    E = kg.num_edges
    if E == 0:
        raise TranscendError("the graph has no edges: skill generalization needs one-hop facts.")
    if not 1 <= num_experts <= E:
        raise TranscendError(f"experts (one per area of expertise) must be between 1 and the number of "
                             f"edges ({E}), got {num_experts}.")
    labels = load_or_cluster(kg, int(num_experts), seed, cache_dir)
    facts = two_hop_facts(kg)
    within = facts.within(labels)
    pool = np.flatnonzero(within)
    if validation + train > len(pool):
        raise TranscendError(
            f"two-hop training facts ({train}) plus held-out validation facts ({validation}) exceed the "
            f"{len(pool)} within-expertise two-hop facts of this world with {num_experts} experts; "
            f"ask for at most {max(len(pool) - validation, 0)}.")
    rng = np.random.default_rng([seed, 0x2405])  # stream reserved for the two-hop split
    order = pool[rng.permutation(len(pool))]
    split = np.full(len(facts), SPLIT_UNUSED, dtype=np.int8)
    split[order[:validation]] = SPLIT_VALIDATION
    split[order[validation:validation + train]] = SPLIT_TRAIN
    split[~within] = SPLIT_TEST
    k = int(num_experts)
    expert = labels.astype(np.int32)
    return GeneralizationPanel(
        kg=kg, num_experts=k, expert=expert, heads=kg.heads.copy(), rels=kg.rels.copy(), tails=kg.tails.copy(),
        write_prob=np.ones(E), areas=labels, skills=np.eye(k), alpha=1.0, two_hop=facts, split=split)

