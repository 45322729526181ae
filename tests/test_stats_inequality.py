import numpy as np
import pytest

from mechanism.errors import MechanismError
from mechanism.stats.inequality import gini


def brute_force_gini(x: np.ndarray) -> float:
    """Mean absolute difference over all ordered pairs divided by twice the mean."""
    x = np.asarray(x, dtype=np.float64)
    return float(np.abs(x[:, None] - x[None, :]).mean() / (2 * x.mean()))


def test_equal_values_give_zero():
    assert gini(np.full(17, 3.5)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("n", [1, 2, 5, 196])
def test_one_hot_gives_n_minus_one_over_n(n):
    x = np.zeros(n)
    x[n // 2] = 2.0
    assert gini(x) == pytest.approx((n - 1) / n, abs=1e-12)


def test_matches_mean_absolute_difference_on_random_inputs():
    rng = np.random.default_rng(0)
    for n in (2, 3, 10, 57):
        x = rng.exponential(size=n) * rng.integers(0, 2, size=n)   # ties and zeros included
        x[0] = 1.0                                                   # never all zero
        assert gini(x) == pytest.approx(brute_force_gini(x), rel=1e-10, abs=1e-12)


def test_study_note_four_of_196_patches_fifty_times_larger():
    # SPEC §4 H3: 4 of 196 patches 50× larger than the rest → Gini ≈ 0.49 (exactly 0.4898).
    x = np.ones(196)
    x[:4] = 50.0
    assert gini(x) == pytest.approx(2 * 192 * 4 * 49 / (2 * 196 ** 2 * 2), abs=1e-12)
    assert round(gini(x), 2) == 0.49


def test_vectorised_along_any_axis_matches_rows():
    rng = np.random.default_rng(1)
    x = rng.random((4, 6, 9))
    by_last = gini(x, axis=-1)
    assert by_last.shape == (4, 6)
    expected = np.array([[brute_force_gini(row) for row in block] for block in x])
    np.testing.assert_allclose(by_last, expected, rtol=1e-10)
    by_middle = gini(x, axis=1)
    assert by_middle.shape == (4, 9)
    np.testing.assert_allclose(by_middle, gini(np.swapaxes(x, 1, 2)), rtol=1e-12)


def test_scale_invariant():
    x = np.random.default_rng(2).random(30)
    assert gini(1e-6 * x) == pytest.approx(gini(x), rel=1e-10)


def test_all_zero_slice_is_nan_and_others_unaffected():
    x = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    g = gini(x)
    assert np.isnan(g[0])
    assert g[1] == pytest.approx(2 / 3)
    assert np.isnan(gini(np.zeros(4)))


@pytest.mark.parametrize("bad", [np.array([1.0, -0.1]), np.array([1.0, np.nan]),
                                 np.array([np.inf, 1.0]), np.zeros(0)])
def test_rejects_invalid_input(bad):
    with pytest.raises(MechanismError):
        gini(bad)
