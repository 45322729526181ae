"""Top-k purity against brute-force set intersections and its analytic limits."""
import numpy as np
import pytest

from mechanism.stats.purity import chance_purity, oracle_purity, top_k_mask, topk_purity


def brute_top_k(row, k: int) -> set[int]:
    """The k highest entries, ties toward the lower index (the documented rule)."""
    return set(sorted(range(len(row)), key=lambda i: (-row[i], i))[:k])


def test_matches_brute_force_with_many_ties():
    rng = np.random.default_rng(0)
    sel = rng.integers(0, 4, size=(50, 20)).astype(np.float32)   # heavy ties
    ref = rng.integers(0, 4, size=(50, 20)).astype(np.float32)
    for k in (1, 3, 7, 20):
        for k_ref in (1, 2, 5):
            expected = [len(brute_top_k(s, k) & brute_top_k(r, k_ref)) / k for s, r in zip(sel, ref)]
            np.testing.assert_array_equal(topk_purity(sel, ref, k, k_ref), expected)


def test_all_tied_scores_pick_the_first_indices():
    sel = np.zeros((1, 4))
    ref = np.array([[1.0, 0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(top_k_mask(sel, 2), [[True, True, False, False]])
    assert topk_purity(sel, ref, 2, 2)[0] == 0.5     # {0, 1} ∩ {0, 3}


@pytest.mark.parametrize("tied", [False, True])
def test_identical_rankings_reach_the_oracle_at_every_k(tied):
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 3, size=(30, 196)) if tied else rng.normal(size=(30, 196))
    k_ref = 4
    for k in range(1, 197):
        purity = topk_purity(scores, scores, k, k_ref)
        np.testing.assert_allclose(purity, oracle_purity(k, k_ref), rtol=0, atol=1e-15)


def test_reversed_ranking_has_zero_purity_for_small_k():
    ref = np.random.default_rng(2).normal(size=(40, 196))
    k_ref = 4
    for k in (1, 2, 4, 10, 98, 196 - k_ref):
        assert np.all(topk_purity(-ref, ref, k, k_ref) == 0)
    assert np.all(topk_purity(-ref, ref, 196 - k_ref + 1, k_ref) > 0)


@pytest.mark.parametrize("k", [2, 10, 39])
def test_random_selection_has_chance_purity(k):
    n, n_patches, k_ref = 4000, 196, 4
    rng = np.random.default_rng(3 + k)
    purity = topk_purity(rng.random((n, n_patches)), rng.random((n, n_patches)), k, k_ref)
    # overlap ~ hypergeometric(N, k_ref, k): variance of its mean over n images, then / k
    var = k * (k_ref / n_patches) * (1 - k_ref / n_patches) * (n_patches - k) / (n_patches - 1)
    assert purity.mean() == pytest.approx(chance_purity(k_ref, n_patches),
                                          abs=4 * np.sqrt(var / n) / k)


def test_oracle_and_chance_values():
    assert oracle_purity(2, 4) == 1.0 and oracle_purity(8, 4) == 0.5
    assert chance_purity(4, 196) == pytest.approx(4 / 196)


def test_bad_inputs():
    x = np.zeros((2, 5))
    with pytest.raises(ValueError, match="shape"):
        topk_purity(x, np.zeros((2, 6)), 1, 1)
    with pytest.raises(ValueError, match="k must"):
        topk_purity(x, x, 6, 1)
    with pytest.raises(ValueError, match="k_ref"):
        topk_purity(x, x, 1, 0)
    with pytest.raises(ValueError, match="non-finite"):
        topk_purity(np.full((2, 5), np.nan), x, 1, 1)
    with pytest.raises(ValueError, match="n_images"):
        topk_purity(np.zeros(5), np.zeros(5), 1, 1)
