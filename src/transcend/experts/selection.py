"""Skill selection: specialist experts who write more about what they know.

* **Areas of expertise.** The edges are clustered (:func:`cluster_edges`);
  by default into one cluster per ~10.9 edges, the published testbed's
  ratio (5,000 clusters for 54,500 edges).
* **Skills.** Expert i has a coverage vector s_i over the clusters with
  sum_j s_i(j) |C_j| = c |E| (:func:`coverage_vectors`, a linear program:
  almost every entry 0 or 1).
* **Knowledge.** Expert i knows an edge of cluster j correctly with
  probability s_i(j), and otherwise corrupts it as in denoising (head or tail
  swapped for another entity of the same type), independently per expert and
  edge.
* **Writing.** Each belief is written, when its head's paragraph is, with
  probability alpha * s_i(j) + (1 - alpha), j the cluster of the edge it came
  from: alpha = 1, experts write only what they know; alpha = 0, they write
  everything they hold, as in denoising. (``write_paragraphs`` redraws empty
  paragraphs, so the per-fact rates stay in these proportions and every expert
  writes its full share of paragraphs.)

The clustering is the slow step on big graphs (~10 s for the paper graph), so
it can be cached in a folder, keyed by the world's fingerprint, the number of
clusters and the seed: a sweep over alpha or coverage clusters once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transcend.errors import TranscendError
from transcend.experts.areas import cluster_edges
from transcend.experts.coverage_lp import coverage_vectors
from transcend.experts.panel import ExpertPanel, corrupt_edges
from transcend.world.kg import KnowledgeGraph

# The published testbed's edges per cluster: 54,500 edges in 5,000 clusters.
PAPER_EDGES_PER_CLUSTER = 54_500 / 5_000


@dataclass
class SelectionPanel(ExpertPanel):
    """An expert panel with the areas and skills that made it."""

    areas: np.ndarray   # int64, cluster label of every edge of the graph
    skills: np.ndarray  # float64 (num_experts, num_clusters): s_i(j)
    alpha: float

    @property
    def num_clusters(self) -> int:
        return self.skills.shape[1]


def default_num_clusters(num_edges: int) -> int:
    """The paper's clusters-per-edge ratio applied to ``num_edges`` (at least 1, at most one per edge)."""
    return int(min(max(1, round(num_edges / PAPER_EDGES_PER_CLUSTER)), max(num_edges, 1)))


def areas_file_name(kg: KnowledgeGraph, num_clusters: int, seed: int) -> str:
    from transcend.config import code_digest

    # the code that clusters (the corpus stage's code): other clustering code never reuses cached areas
    return f"areas-{kg.fingerprint()}-k{num_clusters}-s{seed}-c{code_digest('corpus')}.npy"


def load_or_cluster(kg: KnowledgeGraph, num_clusters: int, seed: int, cache_dir: Path | None = None
                    ) -> np.ndarray:
    """Cluster labels of the edges, read from ``cache_dir`` if an earlier run cached them, else
    computed (and cached there; a cache that cannot be written is skipped)."""
    path = Path(cache_dir) / areas_file_name(kg, num_clusters, seed) if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            labels = np.load(path, allow_pickle=False)
            if (labels.shape == (kg.num_edges,) and labels.dtype.kind == "i"
                    and np.array_equal(np.unique(labels), np.arange(num_clusters))):
                return labels.astype(np.int64)
        except (OSError, ValueError):
            pass  # unreadable or stale: recompute below
    labels = cluster_edges(kg, num_clusters, seed)
    if path is not None:
        try:
            save_areas(labels, path)
        except OSError:
            pass
    return labels


def save_areas(labels: np.ndarray, path: Path) -> None:
    """Write cluster labels atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, np.asarray(labels, dtype=np.int64))
    os.replace(tmp, path)


def selection_panel(kg: KnowledgeGraph, num_experts: int, coverage: float, alpha: float,
                    num_clusters: int | None, seed: int, cache_dir: Path | None = None) -> SelectionPanel:
    """Specialist experts: expert i knows cluster j's edges with probability s_i(j) and writes a
    belief with probability ``alpha * s_i(j) + (1 - alpha)``.

    ``num_clusters`` None takes :func:`default_num_clusters`. ``cache_dir``, if given, caches the
    clustering (see :func:`load_or_cluster`). Raises ``TranscendError`` on bad input.
    """
    E = kg.num_edges
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not 0.0 <= alpha <= 1.0:
        raise TranscendError(f"alpha must be in [0, 1], got {alpha}.")
    if not isinstance(num_experts, (int, np.integer)) or num_experts < 1:
        raise TranscendError(f"experts must be a whole number of at least 1, got {num_experts}.")
    if E == 0:
        raise TranscendError("the graph has no edges: skill selection needs at least one edge to cluster.")
    k = default_num_clusters(E) if num_clusters is None else num_clusters
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= E:
        raise TranscendError(f"clusters must be a whole number between 1 and the number of edges ({E}), got {k}.")
    k = int(k)
    labels = load_or_cluster(kg, k, seed, cache_dir)
    sizes = np.bincount(labels, minlength=k)
    skills = coverage_vectors(sizes, coverage, num_experts, seed)

    rng = np.random.default_rng([seed, 0x5E1EC7])  # stream reserved for the selection experts
    edge = np.tile(np.arange(E), num_experts)
    expert = np.repeat(np.arange(num_experts, dtype=np.int32), E)
    s = skills[expert, labels[edge]]
    keep = rng.random(len(edge)) < s
    h, r, t = kg.heads[edge].copy(), kg.rels[edge].copy(), kg.tails[edge].copy()
    bad = np.flatnonzero(~keep)
    h[bad], r[bad], t[bad] = corrupt_edges(kg, edge[bad], rng)
    alpha = float(alpha)
    return SelectionPanel(kg=kg, num_experts=num_experts, expert=expert, heads=h, rels=r, tails=t,
                          write_prob=alpha * s + (1.0 - alpha), areas=labels, skills=skills, alpha=alpha)
