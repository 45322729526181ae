"""Resampled task metrics against sklearn with the same sample weights, and AUPRO against the
reference implementation on the materialised resample."""
import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from mechanism.eval.metrics.aupro import aupro
from mechanism.eval.metrics.resampled import (aupro_from_counts, auroc_from_counts,
                                              average_precision_from_counts, bin_pixels,
                                              image_auroc_weighted)
from mechanism.stats.bootstrap import two_stage_resamples


def resample_weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, n)`` draw counts of one-seed bootstrap resamples."""
    return np.stack([np.bincount(draw[0][1], minlength=n)
                     for draw in two_stage_resamples([n], n_boot, seed)]).astype(np.float64)


def _scored(rng, masks, shift, levels=None):
    """Noise maps raised by ``shift`` on the defect pixels of ``masks``, as ``(maps, masks)``;
    ``levels``: rounded to 1/levels (few distinct values: ties across images)."""
    maps = rng.normal(size=masks.shape) + shift * masks
    if levels is not None:
        maps = np.round(maps * levels) / levels
    return maps.astype(np.float32), masks


def _maps(rng, n=12, size=8, levels=None):
    return _scored(rng, (rng.random((n, size, size)) < 0.15).astype(np.uint8), 1.5, levels)


def test_binned_pixel_metrics_equal_sklearn_with_weights_when_bins_are_exact():
    rng = np.random.default_rng(0)
    maps, masks = _maps(rng, levels=2)
    binned = bin_pixels(maps, masks)
    assert binned.exact
    weights = resample_weights(len(maps), 5, seed=3)
    pos, neg = weights @ binned.positives, weights @ binned.negatives
    ap, auc = average_precision_from_counts(pos, neg), auroc_from_counts(pos, neg)
    for b, w in enumerate(weights):
        pixel_w = np.repeat(w, maps[0].size)
        assert ap[b] == pytest.approx(average_precision_score(masks.ravel(), maps.ravel(),
                                                              sample_weight=pixel_w), abs=1e-12)
        assert auc[b] == pytest.approx(roc_auc_score(masks.ravel(), maps.ravel(),
                                                     sample_weight=pixel_w), abs=1e-12)


def test_quantile_bins_approximate_sklearn_on_continuous_maps():
    rng = np.random.default_rng(1)
    maps, masks = _maps(rng, n=20, size=32)
    binned = bin_pixels(maps, masks, n_bins=512)
    assert not binned.exact and binned.positives.shape[1] <= 512
    pos, neg = binned.positives.sum(0), binned.negatives.sum(0)
    assert average_precision_from_counts(pos, neg) == pytest.approx(
        average_precision_score(masks.ravel(), maps.ravel()), abs=0.005)
    assert auroc_from_counts(pos, neg) == pytest.approx(roc_auc_score(masks.ravel(), maps.ravel()), abs=0.002)


def test_weighted_image_auroc_equals_sklearn_and_counts_ties_half():
    rng = np.random.default_rng(2)
    scores = np.round(rng.normal(size=30), 1)
    labels = (rng.random(30) < 0.5).astype(int)
    weights = resample_weights(30, 4, seed=0)
    got = image_auroc_weighted(scores, labels, weights)
    for b, w in enumerate(weights):
        assert got[b] == pytest.approx(roc_auc_score(labels, scores, sample_weight=w), abs=1e-12)
    assert image_auroc_weighted(np.zeros(4), np.array([0, 1, 0, 1]), np.ones((1, 4)))[0] == 0.5


def _blobs(rng, n=10, size=16, levels=None):
    """Maps with square defects (several regions per image, some images without)."""
    masks = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        for _ in range(i % 3):
            r, c = rng.integers(0, size - 4, 2)
            masks[i, r:r + rng.integers(2, 5), c:c + rng.integers(2, 5)] = 1
    return _scored(rng, masks, 1.2, levels)


def test_resampled_aupro_equals_the_reference_on_the_materialised_resample():
    rng = np.random.default_rng(4)
    maps, masks = _blobs(rng, levels=3)
    binned = bin_pixels(maps, masks)
    assert binned.exact
    weights = resample_weights(len(maps), 6, seed=1)
    got = aupro_from_counts(weights @ binned.negatives, weights @ binned.region_overlap,
                            weights @ binned.n_regions)
    for b, w in enumerate(weights):
        repeat = np.repeat(np.arange(len(maps)), w.astype(int))
        if masks[repeat].any():
            assert got[b] == pytest.approx(aupro(maps[repeat], masks[repeat]), abs=1e-9)
        else:
            assert np.isnan(got[b])
    continuous = _blobs(np.random.default_rng(5), n=20, size=32)     # quantile bins: close
    fine = bin_pixels(*continuous, n_bins=2048)
    whole = aupro_from_counts(fine.negatives.sum(0, keepdims=True),
                              fine.region_overlap.sum(0, keepdims=True),
                              fine.n_regions.sum(keepdims=True))[0]
    assert whole == pytest.approx(aupro(*continuous), abs=0.005)
