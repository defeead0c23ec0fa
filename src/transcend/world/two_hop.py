"""Two-hop facts: (a, r1, r2) -> c through a bridge b, with (a, r1) -> b and (b, r2) -> c.

A two-hop fact is a path of two one-hop edges. Given the areas of expertise (a
cluster label per edge), a path is *within-expertise* when both edges lie in
one cluster (one expert could have written it) and *across-expertise* when
they do not (answering needs what two experts wrote).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transcend.experts.writing import _expand
from transcend.world.kg import KnowledgeGraph


@dataclass
class TwoHopFacts:
    """Paths a -r1-> b -r2-> c, one row per (first edge, second edge), sorted by (a, r1, r2, c)."""

    edge1: np.ndarray  # int64, index of (a, r1, b) among the graph's edges
    edge2: np.ndarray  # int64, index of (b, r2, c)
    a: np.ndarray
    r1: np.ndarray
    b: np.ndarray
    r2: np.ndarray
    c: np.ndarray

    def __len__(self) -> int:
        return len(self.a)

    def subset(self, idx: np.ndarray) -> "TwoHopFacts":
        return TwoHopFacts(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))

    def within(self, areas: np.ndarray) -> np.ndarray:
        """Whether each path's two edges share a cluster (``areas``: label per edge)."""
        return areas[self.edge1] == areas[self.edge2]

    def question_key(self, num_relations: int) -> np.ndarray:
        """One int64 per (a, r1, r2) question (paths through different bridges share it)."""
        R = num_relations
        return (self.a.astype(np.int64) * R + self.r1) * R + self.r2


def two_hop_facts(kg: KnowledgeGraph) -> TwoHopFacts:
    """Every path of two edges whose answer is not its own head (a != c)."""
    starts = np.searchsorted(kg.heads, kg.tails)             # edges leaving each edge's tail
    ends = np.searchsorted(kg.heads, kg.tails, side="right")
    edge2, edge1 = _expand(starts, ends - starts)
    edge1 = edge1.astype(np.int64)
    a, c = kg.heads[edge1], kg.tails[edge2]
    keep = a != c  # "the father of the child of a" is a again: not a question worth asking
    edge1, edge2 = edge1[keep], edge2[keep]
    f = TwoHopFacts(edge1=edge1, edge2=edge2.astype(np.int64), a=kg.heads[edge1], r1=kg.rels[edge1],
                    b=kg.tails[edge1], r2=kg.rels[edge2], c=kg.tails[edge2])
    order = np.lexsort((f.c, f.r2, f.r1, f.a))
    return f.subset(order)


def degree_products(kg: KnowledgeGraph, areas: np.ndarray) -> tuple[int, int]:
    """Appendix A.2's two sums: (sum_v d_in(v), sum_i sum_v d_in^(i)(v) d_out^(i)(v)).

    The first is the number of one-hop facts (each edge enters one entity); the
    second the number of two-hop paths lying inside single clusters, i.e. how
    many within-expertise two-hop facts the experts could write at most.
    """
    V = kg.num_entities
    k = int(areas.max()) + 1 if len(areas) else 0
    d_in = np.bincount(areas.astype(np.int64) * V + kg.tails, minlength=k * V)
    d_out = np.bincount(areas.astype(np.int64) * V + kg.heads, minlength=k * V)
    return int(kg.num_edges), int((d_in.astype(np.int64) * d_out).sum())
