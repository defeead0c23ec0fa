"""Areas of expertise: the graph's edges partitioned into K connected, coherent clusters.

The published testbed clusters the edge (line) graph spectrally: two edges are
adjacent when they share an entity. Done literally this is slow twice over —
a hub entity of degree d makes a d-clique (the paper graph's line graph has
~5.3M entries), and K = 5,000 clusters would need ~5,000 eigenvectors.

Here:

* **The line graph, hubs down-weighted.** Each entity is a hyperedge over the
  graph edges that touch it; the normalised hypergraph operator of Zhou,
  Huang & Schölkopf (2006), ``M = A^T A`` with
  ``A = D_v^{-1/2} B D_e^{-1/2}`` (``B`` the entity × edge incidence,
  ``D_v`` entity degrees, ``D_e`` edge degrees), is the line graph with each
  entity's clique weighted ``1/d_v``: a person's few facts bind strongly, a
  country shared by 900 people binds weakly. ``M`` is applied as two sparse
  products and never formed (except for small pieces, where it is dense).
* **Recursive spectral bisection.** A piece that must hold k clusters is cut
  at the best ratio cut, within ±``window`` of the size share of ``k // 2``
  clusters, along its Fiedler vector (second eigenvector of ``M``). Fragments
  the cut leaves disconnected from their side are handed to the other side
  (where they are attached), so every piece — and every cluster — stays
  connected; if that unbalances the cut, the next-best cuts are tried. This
  needs one eigenvector per split instead of K at once.

Components of the whole graph are handled first: clusters are shared among
them in proportion to size (each gets at least one), or, if there are more
components than clusters, components are packed into clusters (the only case
in which a cluster is not connected).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.sparse.csgraph import connected_components
from threadpoolctl import threadpool_limits

from transcend.errors import TranscendError
from transcend.world.kg import KnowledgeGraph

# Pieces up to this many edges get a dense eigensolver (faster than ARPACK there).
DENSE_MAX = 300
# How far a split's size may stray from its share, to find a cheaper cut.
SPLIT_WINDOW = 0.15
# Cuts tried, best first, when reconnecting a cut's fragments unbalances it beyond twice the window.
RETRY_CUTS = 8


def cluster_edges(
    kg_or_arrays: KnowledgeGraph | Sequence[np.ndarray],
    num_clusters: int,
    seed: int,
    window: float = SPLIT_WINDOW,
) -> np.ndarray:
    """Cluster label in ``0..num_clusters-1`` for every edge; every cluster is non-empty.

    ``kg_or_arrays`` is a :class:`KnowledgeGraph` or the edge arrays
    ``(heads, tails)`` or ``(heads, rels, tails)`` (relations do not affect
    adjacency). ``seed`` seeds the sparse eigensolver's start vectors: a
    large piece's Fiedler vector is nearly degenerate and solved to a loose
    tolerance, so other seeds give different, equally good partitions
    (adjusted Rand ~0.17 between seeds on the paper graph); the same seed
    gives the same labels.

    Labels are numbered in the order clusters are finished (depth first), so
    neighbouring labels are nearby areas.
    """
    heads, tails = _edge_arrays(kg_or_arrays)
    num_edges = len(heads)
    if isinstance(num_clusters, bool) or not isinstance(num_clusters, (int, np.integer)):
        raise TranscendError(f"num_clusters must be an integer, got {num_clusters!r}.")
    if num_edges == 0:
        raise TranscendError("cannot cluster a graph with no edges: it needs at least one edge.")
    if not 1 <= num_clusters <= num_edges:
        raise TranscendError(
            f"num_clusters is {num_clusters}, but it must be between 1 and the number of edges ({num_edges})."
        )
    if not 0.0 <= window < 1.0:
        raise TranscendError(f"window is {window}, but it must be in [0, 1).")
    # Thousands of small eigenproblems: one BLAS thread each is faster than two fighting (and deterministic).
    with threadpool_limits(limits=1):
        return _Bisector(heads, tails, int(num_clusters), np.random.default_rng([seed, 0xC1A5]), window).run()


def cluster_quality(kg_or_arrays: KnowledgeGraph | Sequence[np.ndarray], labels: np.ndarray) -> dict[str, Any]:
    """Size distribution and coherence of a clustering.

    ``share_entity`` is the fraction of same-cluster edge pairs that share an
    entity; ``share_entity_random`` is its exact expectation for a random
    partition with the same sizes (the chance two distinct random edges share
    an entity); ``lift`` is their ratio. ``connected`` is the fraction of
    clusters whose edges form one connected piece. ``two_hop_within`` is the
    fraction of two-hop chains (an edge into v, an edge out of v) whose edges
    share a cluster — what generalization's within-expertise questions need;
    ``two_hop_within_random`` is the same for a random partition with these sizes.
    """
    heads, tails = _edge_arrays(kg_or_arrays)
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != heads.shape:
        raise TranscendError(f"labels has shape {labels.shape}, but it must have one label per edge ({heads.shape}).")
    sizes = np.bincount(labels)
    within_pairs = float((sizes * (sizes - 1) // 2).sum())
    e = len(heads)
    share = _pairs_sharing(heads, tails, labels) / within_pairs if within_pairs else float("nan")
    share_random = _pairs_sharing(heads, tails, np.zeros(e, np.int64)) / (e * (e - 1) / 2) if e > 1 else float("nan")
    nonempty = sizes[sizes > 0]
    return {
        "clusters": int(len(nonempty)),
        "edges": int(e),
        "size_min": int(nonempty.min()),
        "size_median": float(np.median(nonempty)),
        "size_mean": float(nonempty.mean()),
        "size_max": int(nonempty.max()),
        "size_p10": float(np.percentile(nonempty, 10)),
        "size_p90": float(np.percentile(nonempty, 90)),
        "singletons": int((nonempty == 1).sum()),
        "share_entity": float(share),
        "share_entity_random": float(share_random),
        "lift": float(share / share_random) if share_random else float("nan"),
        "connected": float(_connected_fraction(heads, tails, labels)),
        "two_hop_within": _two_hop_within(heads, tails, labels),
        "two_hop_within_random": float((sizes * (sizes - 1)).sum() / (e * (e - 1))) if e > 1 else float("nan"),
    }


# --- internals ------------------------------------------------------------------------------


def _edge_arrays(kg_or_arrays: KnowledgeGraph | Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(kg_or_arrays, KnowledgeGraph):
        return kg_or_arrays.heads.astype(np.int64), kg_or_arrays.tails.astype(np.int64)
    arrays = list(kg_or_arrays)
    if len(arrays) not in (2, 3):
        raise TranscendError(
            f"expected a KnowledgeGraph or (heads, tails) or (heads, rels, tails), got {len(arrays)} arrays."
        )
    heads, tails = np.asarray(arrays[0]), np.asarray(arrays[-1])
    if heads.ndim != 1 or heads.shape != tails.shape:
        raise TranscendError(f"heads and tails must be 1-D and equally long, got shapes {heads.shape} and {tails.shape}.")
    if heads.size and min(heads.min(), tails.min()) < 0:
        raise TranscendError("heads and tails must be non-negative entity indices.")
    return heads.astype(np.int64), tails.astype(np.int64)


def _pairs_sharing(heads: np.ndarray, tails: np.ndarray, labels: np.ndarray) -> float:
    """Same-label edge pairs that share at least one entity (pairs sharing both counted once)."""
    lo, hi = np.minimum(heads, tails), np.maximum(heads, tails)
    loop = lo == hi
    ends = np.concatenate([np.stack([labels, lo], 1), np.stack([labels, hi], 1)[~loop]])
    _, by_entity = np.unique(ends, axis=0, return_counts=True)
    _, by_both = np.unique(np.stack([labels, lo, hi], 1)[~loop], axis=0, return_counts=True)
    return _pairs(by_entity) - _pairs(by_both)


def _pairs(counts: np.ndarray) -> float:
    return float((counts * (counts - 1) // 2).sum())


def _two_hop_within(heads: np.ndarray, tails: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of chains (e1 into v, e2 out of v, e1 != e2) with both edges in one cluster."""
    n = int(max(heads.max(), tails.max())) + 1
    into, out = np.bincount(tails, minlength=n), np.bincount(heads, minlength=n)
    loops = np.bincount(heads[heads == tails], minlength=n)  # a self-loop is not a chain with itself
    total = float((into * out - loops).sum())
    if total == 0:
        return float("nan")
    k = int(labels.max()) + 1
    into_c = np.unique(tails * k + labels, return_counts=True)
    out_c = np.unique(heads * k + labels, return_counts=True)
    common, i, j = np.intersect1d(into_c[0], out_c[0], assume_unique=True, return_indices=True)
    within = float((into_c[1][i].astype(np.float64) * out_c[1][j]).sum()) - float((heads == tails).sum())
    return within / total


def _connected_fraction(heads: np.ndarray, tails: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of clusters whose edges are connected (through shared entities)."""
    nodes, inv = np.unique(np.concatenate([np.stack([labels, heads], 1), np.stack([labels, tails], 1)]),
                           axis=0, return_inverse=True)
    inv = inv.ravel()
    e = len(heads)
    graph = sp.csr_matrix((np.ones(e), (inv[:e], inv[e:])), shape=(len(nodes), len(nodes)))
    _, comp = connected_components(graph, directed=False)
    comps_per_cluster = np.bincount(np.unique(np.stack([nodes[:, 0], comp], 1), axis=0)[:, 0])
    present = np.bincount(labels) > 0
    return float((comps_per_cluster[present] == 1).mean())


def _components(hl: np.ndarray, tl: np.ndarray, num_entities: int) -> tuple[int, np.ndarray]:
    """Connected components of a set of edges given by local entity ids; component per edge."""
    graph = sp.csr_matrix((np.ones(len(hl)), (hl, tl)), shape=(num_entities, num_entities))
    n, comp = connected_components(graph, directed=False)
    return n, comp[hl]


def _allocate(sizes: np.ndarray, k: int) -> np.ndarray:
    """Split k clusters among parts in proportion to size: each gets 1..size, largest remainders first."""
    quota = sizes * (k / sizes.sum())
    alloc = np.clip(np.floor(quota).astype(np.int64), 1, sizes)
    while alloc.sum() < k:
        alloc[np.argmax(np.where(alloc < sizes, quota - alloc, -np.inf))] += 1
    while alloc.sum() > k:
        alloc[np.argmax(np.where(alloc > 1, alloc - quota, -np.inf))] -= 1
    return alloc


class _Bisector:
    """Recursive spectral bisection of the hub-weighted line graph (see the module docstring)."""

    def __init__(self, heads: np.ndarray, tails: np.ndarray, k: int, rng: np.random.Generator, window: float):
        self.heads, self.tails, self.k, self.rng, self.window = heads, tails, k, rng, window
        self.labels = np.full(len(heads), -1, dtype=np.int64)
        self.next_label = 0

    def run(self) -> np.ndarray:
        idx = np.arange(len(self.heads))
        hl, tl, nv = self._local(idx)
        ncomp, comp = _components(hl, tl, nv)
        if ncomp == 1:
            stack = [(idx, self.k)]
        else:
            order = np.argsort(comp, kind="stable")
            parts = np.split(order, np.cumsum(np.bincount(comp, minlength=ncomp))[:-1])
            sizes = np.array([len(p) for p in parts])
            if ncomp > self.k:  # more components than clusters: pack them, largest first, into the lightest cluster
                heap = [(0, c) for c in range(self.k)]
                for p in np.argsort(-sizes, kind="stable"):
                    load, c = heapq.heappop(heap)
                    self.labels[parts[p]] = c
                    heapq.heappush(heap, (load + int(sizes[p]), c))
                return self.labels
            stack = [(parts[p], int(a)) for p, a in zip(range(ncomp), _allocate(sizes, self.k))][::-1]
        while stack:  # depth first, so labels of nearby clusters are close
            idx, k = stack.pop()
            if k == 1 or len(idx) == k:
                self.labels[idx] = self.next_label + (np.arange(k) if k > 1 else 0)
                self.next_label += k
                continue
            left, right, k_left = self._split(idx, k)
            stack.append((right, k - k_left))
            stack.append((left, k_left))
        assert self.next_label == self.k and (self.labels >= 0).all()
        return self.labels

    def _local(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        n = len(idx)
        ents, inv = np.unique(np.concatenate([self.heads[idx], self.tails[idx]]), return_inverse=True)
        inv = inv.ravel()
        return inv[:n], inv[n:], len(ents)

    def _split(self, idx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Cut a connected piece holding k clusters into two connected pieces and share k between them."""
        n = len(idx)
        hl, tl, nv = self._local(idx)
        loop = hl == tl
        # Incidence entries (entity, edge); a self-loop touches its entity once.
        ent = np.concatenate([hl, tl[~loop]])
        edge = np.concatenate([np.arange(n), np.flatnonzero(~loop)])
        d_v = np.bincount(ent, minlength=nv).astype(np.float64)
        d_e = np.where(loop, 1.0, 2.0)
        vals = 1.0 / np.sqrt(d_v[ent] * d_e[edge])
        fiedler = self._fiedler(ent, edge, vals, d_e, nv, n) / np.sqrt(d_e)
        if fiedler[np.argmax(np.abs(fiedler))] < 0:  # an eigenvector's sign is arbitrary; fix it
            fiedler = -fiedler
        order = np.lexsort((np.arange(n), fiedler))
        k_left = k // 2
        target = n * k_left / k
        lo = max(k_left, int(np.floor(target * (1 - self.window))), 1)
        hi = min(n - (k - k_left), int(np.ceil(target * (1 + self.window))), n - 1)
        # Reconnecting can move many edges across a cut; then try the next-best cuts,
        # keeping the first whose sides stay near their share (else the nearest seen).
        best: np.ndarray | None = None
        for cut in _sweep_cuts(ent, edge, d_v, order, lo, hi)[:RETRY_CUTS]:
            left = np.zeros(n, dtype=bool)
            left[order[:cut]] = True
            left = _reconnect(hl, tl, nv, left)
            if best is None or abs(left.sum() - target) < abs(best.sum() - target):
                best = left
            if abs(left.sum() - target) <= 2 * self.window * target:
                break
        left = best
        n_left = int(left.sum())
        k_left = min(max(int(round(k * n_left / n)), 1, k - (n - n_left)), k - 1, n_left)
        return idx[left], idx[~left], k_left

    def _fiedler(self, ent: np.ndarray, edge: np.ndarray, vals: np.ndarray, d_e: np.ndarray,
                 nv: int, n: int) -> np.ndarray:
        """Second eigenvector of M = A^T A (its top one, sqrt(d_e), is projected out)."""
        top = np.sqrt(d_e) / np.linalg.norm(np.sqrt(d_e))
        if n <= DENSE_MAX:
            a = np.zeros((nv, n))
            a[ent, edge] = vals
            m = a.T @ a
            m -= np.outer(top, top)  # deflate, so the answer is the top eigenvector
            _, vec = sla.eigh(m, subset_by_index=[n - 1, n - 1], driver="evr")
            if vec.shape[1] != 1:  # MRRR can give up on tight clusters of eigenvalues
                vec = np.linalg.eigh(m)[1][:, -1:]
            return vec[:, 0]
        a = sp.csr_matrix((vals, (ent, edge)), shape=(nv, n))
        at = a.T.tocsr()

        def matvec(x: np.ndarray) -> np.ndarray:
            x = np.ravel(x)
            x = x - top * (top @ x)
            y = at @ (a @ x)
            return y - top * (top @ y)

        op = spla.LinearOperator((n, n), matvec=matvec, dtype=np.float64)
        v0 = self.rng.standard_normal(n)
        try:
            _, vec = spla.eigsh(op, k=1, which="LA", v0=v0, tol=1e-4, maxiter=20 * n)
        except spla.ArpackNoConvergence as err:  # a rough Fiedler vector still orders the piece
            vec = err.eigenvectors if err.eigenvectors.size else v0[:, None]
        return vec[:, 0]


def _sweep_cuts(ent: np.ndarray, edge: np.ndarray, d_v: np.ndarray, order: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Prefix lengths in [lo, hi] of ``order``, best first by ratio cut cut/(|S||S̄|).

    The hub-weighted cut of a prefix S is sum_v a_v (d_v - a_v) / d_v, a_v the
    number of v's edges in S; adding an edge raises it by (d_v - 2 a_v - 1)/d_v
    for each of its entities, so all prefixes' cuts are one cumulative sum.
    """
    n = len(order)
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n)
    p = pos[edge]
    srt = np.lexsort((p, ent))
    ent_s = ent[srt]
    first = np.r_[True, ent_s[1:] != ent_s[:-1]]
    run_start = np.maximum.accumulate(np.where(first, np.arange(len(srt)), 0))
    before = np.empty(len(srt), dtype=np.float64)
    before[srt] = np.arange(len(srt)) - run_start  # a_v just before this edge joins S
    d = d_v[ent]
    cut = np.cumsum(np.bincount(p, weights=(d - 2 * before - 1) / d, minlength=n))
    size = np.arange(lo, hi + 1)
    score = cut[size - 1] / (size * (n - size))
    return size[np.argsort(score, kind="stable")]


def _reconnect(hl: np.ndarray, tl: np.ndarray, nv: int, left: np.ndarray) -> np.ndarray:
    """Hand fragments cut off from their side's largest part to the other side.

    The piece is connected, so a fragment of one side touches the other side;
    after one pass per side both sides are connected.
    """
    left = left.copy()
    for side in (True, False):
        mask = left == side
        members = np.flatnonzero(mask)
        ncomp, comp = _components(hl[members], tl[members], nv)
        if ncomp > 1:
            counts = np.bincount(comp)
            if (counts > 0).sum() > 1:
                left[members[comp != np.argmax(counts)]] = not side
    return left
