"""Edge distances, their uniform law and the discrete KS test against brute-force enumeration."""
import itertools

import numpy as np
import pytest
from scipy import stats

from mechanism.errors import MechanismError
from mechanism.stats.edge_distance import (edge_distance_grid, edge_distance_ks, max_edge_distance,
                                           uniform_edge_distance_mean, uniform_edge_distance_pmf)

SHAPES = [(1, 1), (1, 7), (7, 1), (2, 2), (3, 5), (7, 4), (13, 13), (14, 14), (6, 11)]


def brute_distances(h, w):
    return np.array([min(i, j, h - 1 - i, w - 1 - j) for i, j in itertools.product(range(h), range(w))])


def test_golden_uniform_means():
    assert round(uniform_edge_distance_mean(14, 14), 3) == 1.857
    assert round(uniform_edge_distance_mean(28, 28), 3) == 4.179
    assert uniform_edge_distance_mean(14, 14) == pytest.approx(364 / 196)


@pytest.mark.parametrize("h,w", SHAPES)
def test_grid_pmf_and_mean_match_enumeration(h, w):
    brute = brute_distances(h, w)
    np.testing.assert_array_equal(edge_distance_grid(h, w).ravel(), brute)
    assert edge_distance_grid(h, w).shape == (h, w)
    assert max_edge_distance(h, w) == brute.max()
    pmf = uniform_edge_distance_pmf(h, w)
    np.testing.assert_allclose(pmf, np.bincount(brute) / brute.size, atol=1e-15)
    assert pmf.sum() == pytest.approx(1.0)
    assert uniform_edge_distance_mean(h, w) == pytest.approx(brute.mean(), abs=1e-12)
    assert (pmf * np.arange(pmf.size)).sum() == pytest.approx(uniform_edge_distance_mean(h, w))


def test_bad_grid():
    with pytest.raises(MechanismError):
        edge_distance_grid(0, 3)


@pytest.mark.parametrize("h,w", [(14, 14), (7, 4), (1, 1)])
def test_ks_statistic_is_the_supremum(h, w):
    rng = np.random.default_rng(h * w)
    d = rng.integers(0, max_edge_distance(h, w) + 1, size=37)
    result = edge_distance_ks(d, h, w)
    cells = brute_distances(h, w)
    t = np.arange(-1.5, max_edge_distance(h, w) + 2, 0.25)          # brute-force sup over a fine grid
    sup = max(abs((d <= s).mean() - (cells <= s).mean()) for s in t)
    assert result.statistic == pytest.approx(sup)
    # the uniform law replicated many times has exactly F as its ECDF: ks_2samp gives the same D
    assert result.statistic == pytest.approx(stats.ks_2samp(d, np.tile(cells, 50)).statistic)
    assert result.p_value == pytest.approx(stats.kstwo.sf(sup, d.size))
    assert result.n == 37


def test_ks_is_conservative_under_the_null_and_rejects_the_border():
    h = w = 14
    pmf = uniform_edge_distance_pmf(h, w)
    rng = np.random.default_rng(0)
    p = np.array([edge_distance_ks(rng.choice(pmf.size, size=300, p=pmf), h, w).p_value
                  for _ in range(400)])
    assert (p < 0.05).mean() <= 0.05 + 0.02         # discrete null: at or below the nominal rate
    assert edge_distance_ks(np.zeros(100, dtype=int), h, w).p_value < 1e-10


def test_ks_rejects_bad_samples():
    with pytest.raises(MechanismError):
        edge_distance_ks(np.array([], dtype=int), 4, 4)
    with pytest.raises(MechanismError):
        edge_distance_ks(np.array([0, 2]), 4, 4)            # 4×4 has distances 0 and 1 only
    with pytest.raises(MechanismError):
        edge_distance_ks(np.array([0.5]), 4, 4)
