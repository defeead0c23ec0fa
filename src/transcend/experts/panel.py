"""An expert panel: each expert's personal (possibly corrupted) copy of the graph.

The panel is a flat table of *beliefs*, one row per (expert, fact it holds),
with the probability that the expert writes that fact when it writes a
paragraph about the fact's head. Every mode (denoising, selection,
generalization) builds a panel; writing and evaluation only read it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transcend.world.kg import KnowledgeGraph


@dataclass
class ExpertPanel:
    kg: KnowledgeGraph
    num_experts: int
    expert: np.ndarray      # int32, the expert holding each belief
    heads: np.ndarray       # int32
    rels: np.ndarray        # int32
    tails: np.ndarray       # int32
    write_prob: np.ndarray  # float64, P(written | its head's paragraph is written)

    def __post_init__(self) -> None:
        order = np.lexsort((self.tails, self.rels, self.heads, self.expert))
        for name in ("expert", "heads", "rels", "tails", "write_prob"):
            setattr(self, name, np.ascontiguousarray(getattr(self, name)[order]))

    @property
    def correct(self) -> np.ndarray:
        """Whether each belief is a true fact."""
        return self.kg.is_fact(self.heads, self.rels, self.tails)


def corrupt_edges(kg: KnowledgeGraph, edge_idx: np.ndarray, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Corrupt edges: swap the head or the tail (each with probability 1/2) for another
    entity that may fill that slot (same type, or seen in the same relation slot).

    Returns the corrupted (heads, rels, tails). A slot whose pool holds only the
    original entity keeps it.
    """
    h = kg.heads[edge_idx].copy()
    r = kg.rels[edge_idx].copy()
    t = kg.tails[edge_idx].copy()
    swap_head = rng.random(len(edge_idx)) < 0.5
    draws = rng.random(len(edge_idx))  # one uniform per corruption, mapped into its pool below
    for slot, target, mask in (("head", h, swap_head), ("tail", t, ~swap_head)):
        for rel in np.unique(r[mask]):
            sel = np.flatnonzero(mask & (r == rel))
            pool = kg.slot_pool(int(rel), slot)
            orig = target[sel]
            if len(pool) < 2:
                continue
            # Uniform over the pool minus the original: draw among len-1 slots, skip the original.
            j = np.minimum((draws[sel] * (len(pool) - 1)).astype(np.int64), len(pool) - 2)
            pos = np.searchsorted(pool, orig)
            in_pool = (pos < len(pool)) & (pool[np.minimum(pos, len(pool) - 1)] == orig)
            j = j + (in_pool & (j >= pos))
            target[sel] = pool[j]
    return h, r, t
