"""Coverage vectors: one linear program per selection expert, mostly 0/1, exact coverage."""

from __future__ import annotations

import numpy as np
import pytest

from transcend.errors import TranscendError
from transcend.experts.coverage_lp import coverage_vectors


@pytest.fixture(scope="module")
def sizes():
    return np.random.default_rng(7).integers(1, 40, size=300)


@pytest.fixture(scope="module")
def vectors(sizes):
    return coverage_vectors(sizes, 0.3, 60, seed=0)


def test_shape_bounds_and_exact_coverage(sizes, vectors):
    assert vectors.shape == (60, 300)
    assert vectors.min() >= 0.0 and vectors.max() <= 1.0
    np.testing.assert_allclose(vectors @ sizes, 0.3 * sizes.sum(), rtol=0, atol=1e-6)


def test_vertex_solutions_at_most_one_fractional_entry(vectors):
    fractional = ((vectors > 0) & (vectors < 1)).sum(axis=1)
    assert fractional.max() <= 1
    assert (vectors == 1).sum(axis=1).min() > 0


def test_experts_specialise_differently(vectors):
    known = vectors == 1
    assert len({row.tobytes() for row in known}) == len(known)
    # Independent random orders: two experts share about c of each other's clusters, not all of them.
    overlap = (known[0] & known[1:]).sum(axis=1) / known[0].sum()
    assert overlap.mean() < 0.6


def test_clusters_are_chosen_regardless_of_size(sizes):
    # Costs are per edge, so small and large clusters are each known with probability ~c.
    s = coverage_vectors(sizes, 0.3, 400, seed=3)
    small, large = sizes <= np.median(sizes), sizes > np.median(sizes)
    assert s[:, small].mean() == pytest.approx(0.3, abs=0.04)
    assert s[:, large].mean() == pytest.approx(0.3, abs=0.04)


def test_deterministic_and_prefix_stable(sizes, vectors):
    np.testing.assert_array_equal(coverage_vectors(sizes, 0.3, 60, seed=0), vectors)
    np.testing.assert_array_equal(coverage_vectors(sizes, 0.3, 10, seed=0), vectors[:10])
    assert not np.array_equal(coverage_vectors(sizes, 0.3, 10, seed=1), vectors[:10])


def test_no_and_full_coverage(sizes):
    assert (coverage_vectors(sizes, 0.0, 3, seed=0) == 0).all()
    assert (coverage_vectors(sizes, 1.0, 3, seed=0) == 1).all()


def test_a_single_cluster_is_covered_fractionally():
    np.testing.assert_allclose(coverage_vectors(np.array([11]), 0.25, 2, seed=0), [[0.25], [0.25]])


@pytest.mark.parametrize("c", [-0.1, 1.5, float("nan"), "0.5"])
def test_coverage_outside_the_unit_interval_is_refused(sizes, c):
    with pytest.raises(TranscendError, match="coverage"):
        coverage_vectors(sizes, c, 5, seed=0)


def test_bad_sizes_and_expert_counts_are_refused(sizes):
    with pytest.raises(TranscendError, match="positive"):
        coverage_vectors(np.array([3, 0, 2]), 0.5, 2, seed=0)
    with pytest.raises(TranscendError, match="non-empty"):
        coverage_vectors(np.array([]), 0.5, 2, seed=0)
    with pytest.raises(TranscendError, match="num_experts"):
        coverage_vectors(sizes, 0.5, 0, seed=0)
