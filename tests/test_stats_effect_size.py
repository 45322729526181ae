"""Cliff's δ against its pairwise definition, hand cases and the resampling quadratic form."""
import numpy as np
import pytest

from mechanism.errors import MechanismError
from mechanism.stats.effect_size import cliffs_delta, cliffs_sign_matrix, resampled_cliffs_delta


def brute_delta(a, b):
    a, b = np.ravel(a), np.ravel(b)
    return float(np.sign(a[:, None] - b[None, :]).mean())


def test_hand_cases():
    assert cliffs_delta([3, 4, 5], [0, 1, 2]) == 1.0
    assert cliffs_delta([0, 1], [2, 3, 4]) == -1.0
    assert cliffs_delta([1, 2, 3], [1, 2, 3]) == 0.0
    assert cliffs_delta([1, 1], [1]) == 0.0
    assert cliffs_delta([2, 0], [1]) == 0.0
    assert cliffs_delta([2], [1, 2]) == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(6))
def test_matches_pairwise_definition_with_ties(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 6, size=rng.integers(1, 30)).astype(float)
    b = rng.integers(0, 6, size=rng.integers(1, 30)).astype(float)
    assert cliffs_delta(a, b) == pytest.approx(brute_delta(a, b), abs=1e-12)


def test_rejects_empty_and_non_finite():
    with pytest.raises(MechanismError):
        cliffs_delta([], [1.0])
    with pytest.raises(MechanismError):
        cliffs_delta([np.nan], [1.0])


def test_sign_matrix_and_resampled_delta():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 5, size=(6, 2)).astype(float)
    b = rng.integers(0, 5, size=(6, 7)).astype(float)
    signs = cliffs_sign_matrix(a, b)
    for i in range(6):
        for j in range(6):
            assert signs[i, j] == np.sign(a[i][:, None] - b[j][None, :]).sum()
    assert resampled_cliffs_delta(signs, np.ones(6), 2, 7) == pytest.approx(cliffs_delta(a, b))
    idx = np.array([0, 0, 3, 5, 5, 5])                        # a resample with repeats
    expected = brute_delta(a[idx], b[idx])
    assert resampled_cliffs_delta(signs, np.bincount(idx, minlength=6), 2, 7) == pytest.approx(expected)
