"""Areas of expertise: a partition of the edges into connected, coherent clusters."""

from __future__ import annotations

import numpy as np
import pytest

from transcend.errors import TranscendError
from transcend.experts.areas import cluster_edges, cluster_quality
from transcend.world.kg import generate_graph


@pytest.fixture(scope="module")
def kg():
    return generate_graph(1000, seed=0)


@pytest.fixture(scope="module")
def labels(kg):
    return cluster_edges(kg, 100, seed=0)


def test_every_edge_gets_one_of_k_nonempty_clusters(kg, labels):
    assert labels.shape == (kg.num_edges,)
    assert labels.min() == 0 and labels.max() == 99
    assert (np.bincount(labels, minlength=100) > 0).all()


def test_same_seed_same_clusters(kg, labels):
    np.testing.assert_array_equal(cluster_edges(kg, 100, seed=0), labels)


def test_arrays_give_the_same_clusters_as_the_graph(kg, labels):
    np.testing.assert_array_equal(cluster_edges((kg.heads, kg.rels, kg.tails), 100, seed=0), labels)
    np.testing.assert_array_equal(cluster_edges((kg.heads, kg.tails), 100, seed=0), labels)


def test_clusters_are_connected_and_far_more_coherent_than_random(kg, labels):
    q = cluster_quality(kg, labels)
    assert q["connected"] == 1.0  # this graph is one component, so every cluster can be connected
    # Measured 0.36 against 0.028 for a random partition (seed 0); a random-like clustering fails this.
    assert q["share_entity"] > 0.25
    assert q["lift"] > 8
    assert q["two_hop_within"] > 10 * q["two_hop_within_random"]
    # Sizes stay near |E|/K = 21.6: the bisection shares clusters by size.
    assert 15 <= q["size_median"] <= 28 and q["size_max"] <= 3 * q["size_mean"]


def test_random_partition_matches_the_metrics_random_baseline(kg, labels):
    shuffled = labels[np.random.default_rng(1).permutation(len(labels))]
    q = cluster_quality(kg, shuffled)
    assert q["share_entity"] == pytest.approx(q["share_entity_random"], rel=0.35)
    assert q["connected"] < 0.2


def test_quality_on_a_hand_made_case():
    heads, tails = np.array([0, 1, 3, 4]), np.array([1, 2, 4, 5])  # two chains 0-1-2 and 3-4-5
    good = cluster_quality((heads, tails), np.array([0, 0, 1, 1]))
    bad = cluster_quality((heads, tails), np.array([0, 1, 0, 1]))
    assert (good["share_entity"], good["connected"], good["two_hop_within"]) == (1.0, 1.0, 1.0)
    assert (bad["share_entity"], bad["connected"], bad["two_hop_within"]) == (0.0, 0.0, 0.0)
    assert good["share_entity_random"] == pytest.approx(2 / 6)  # 2 of the 6 edge pairs share an entity


def test_the_bisection_finds_the_obvious_split():
    # Two triangles joined by one bridge edge: two clusters must keep each triangle whole.
    heads, tails = np.array([0, 1, 2, 3, 4, 5, 2]), np.array([1, 2, 0, 4, 5, 3, 3])
    lab = cluster_edges((heads, tails), 2, seed=0)
    assert len(set(lab[:3])) == 1 and len(set(lab[3:6])) == 1 and lab[0] != lab[3]


def test_one_cluster_and_one_cluster_per_edge():
    kg = generate_graph(300, seed=1)
    assert (cluster_edges(kg, 1, seed=0) == 0).all()
    np.testing.assert_array_equal(np.sort(cluster_edges(kg, kg.num_edges, seed=0)), np.arange(kg.num_edges))


def test_disconnected_graphs():
    # Six separate edges: more components than clusters, so components are packed three ways.
    heads, tails = np.arange(0, 12, 2), np.arange(1, 12, 2)
    lab = cluster_edges((heads, tails), 3, seed=0)
    assert np.bincount(lab).tolist() == [2, 2, 2]
    # Two stars of 6 and 2 edges plus a self-loop (3 components) into 4 clusters: each star stays separate.
    heads = np.array([0, 0, 0, 0, 0, 0, 10, 10, 20])
    tails = np.array([1, 2, 3, 4, 5, 6, 11, 12, 20])
    lab = cluster_edges((heads, tails), 4, seed=0)
    assert (np.bincount(lab) > 0).all() and len(np.bincount(lab)) == 4
    assert not set(lab[:6]) & set(lab[6:8]) and not set(lab[:8]) & {lab[8]}


@pytest.mark.parametrize("k", [0, -3, 673, 2.5, True])
def test_bad_cluster_counts_are_refused(k):
    kg = generate_graph(300, seed=0)  # 672 edges
    with pytest.raises(TranscendError, match="num_clusters"):
        cluster_edges(kg, k, seed=0)


def test_bad_arrays_are_refused():
    with pytest.raises(TranscendError, match="equally long"):
        cluster_edges((np.arange(3), np.arange(4)), 2, seed=0)
    with pytest.raises(TranscendError, match="no edges"):
        cluster_edges((np.array([], int), np.array([], int)), 1, seed=0)
