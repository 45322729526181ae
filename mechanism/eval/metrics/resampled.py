"""Image AUROC, pooled Pixel AUROC, Pixel AP and AUPRO of a bootstrap resample of images, fast.

A resample weights each test image by how often it was drawn. Pixel metrics pool millions of
pixels, so calling sklearn once per resample (about a second each) is too slow for 1000
resamples. Instead every image's pixels are counted once into per-image histograms over shared
score bins, and a resample's counts are the weighted sum of its images' histograms (one matrix
product for all resamples). AP and AUROC computed from binned counts treat the scores inside one
bin as tied: when the pooled maps have at most ``n_bins`` distinct values every value is its own
bin and the result equals sklearn's with the same sample weights exactly; otherwise the bins are
equal-count quantile bins of the pooled scores, and the point estimates of a report still come
from sklearn on the raw maps. AUPRO's curve is a sum over images too: per bin, each image's
normal pixels (FPR) and Σ over its regions of the region's pixels in the bin / |region| (PRO),
with its region count.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mechanism.eval.metrics import validate
from mechanism.eval.metrics.aupro import area_up_to, region_weights

DEFAULT_BINS = 4096


@dataclass(frozen=True)
class BinnedPixels:
    """Per-image pixel counts over score bins ordered from the highest score down.

    Attributes:
        positives: ``(n, T)`` defect pixels of image i in bin t.
        negatives: ``(n, T)`` normal pixels of image i in bin t.
        region_overlap: ``(n, T)`` Σ over image i's 8-connected regions of the region's pixels
            in bin t / |region|.
        n_regions: ``(n,)`` regions of image i.
        exact: every distinct score has its own bin (no ties introduced by binning).
    """
    positives: np.ndarray
    negatives: np.ndarray
    region_overlap: np.ndarray
    n_regions: np.ndarray
    exact: bool


def bin_pixels(maps: np.ndarray, masks: np.ndarray, n_bins: int = DEFAULT_BINS) -> BinnedPixels:
    """Count each image's defect and normal pixels of maps ``(n, H, W)`` per score bin."""
    maps, masks = validate.maps_and_masks(maps, masks)
    n = len(maps)
    scores = maps.reshape(n, -1)
    distinct = np.unique(scores)
    exact = len(distinct) <= n_bins
    cuts = distinct[1:] if exact else \
        np.unique(np.quantile(scores, np.linspace(0.0, 1.0, n_bins + 1)[1:-1]))
    n_used = len(cuts) + 1
    ascending = np.searchsorted(cuts, scores, side="right")       # (n, P) bin of each pixel
    flat = (np.arange(n)[:, None] * n_used + (n_used - 1 - ascending)).ravel()
    positive = masks.reshape(n, -1).ravel().astype(bool)
    pos = np.bincount(flat[positive], minlength=n * n_used).reshape(n, n_used)
    neg = np.bincount(flat[~positive], minlength=n * n_used).reshape(n, n_used)
    weight, n_regions = region_weights(masks.astype(bool))
    overlap = np.bincount(flat, weights=weight, minlength=n * n_used).reshape(n, n_used)
    return BinnedPixels(pos.astype(np.float64), neg.astype(np.float64), overlap,
                        n_regions.astype(np.float64), exact)


def _cumulative(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.cumsum(pos, axis=-1), np.cumsum(neg, axis=-1)


def average_precision_from_counts(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """AP = Σ_t (R_t − R_{t−1}) · P_t from counts ``(..., T)`` ordered by descending score.

    Returns ``(...)``; NaN where there is no positive pixel.
    """
    tp, fp = _cumulative(pos, neg)
    total = tp[..., -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1e-300), 1.0)
        recall_step = pos / total
    return np.sum(recall_step * precision, axis=-1)


def auroc_from_counts(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """ROC AUC (trapezoid, ties within a bin count one half) from counts ``(..., T)``.

    Returns ``(...)``; NaN without both classes.
    """
    tp, fp = _cumulative(pos, neg)
    tp_prev = tp - pos
    with np.errstate(invalid="ignore", divide="ignore"):
        area = np.sum(neg * (tp + tp_prev) / 2, axis=-1)
        return area / (tp[..., -1] * fp[..., -1])


def aupro_from_counts(neg: np.ndarray, overlap: np.ndarray, n_regions: np.ndarray,
                      fpr_limit: float = 0.3) -> np.ndarray:
    """AUPRO (``mechanism.eval.metrics.aupro``'s definition) from counts ``(B, T)`` ordered by
    descending score and region counts ``(B,)``: one curve point per bin.

    Returns ``(B,)``; NaN for a resample without a region or a normal pixel.
    """
    fp, covered = np.cumsum(neg, axis=-1), np.cumsum(overlap, axis=-1)
    out = np.full(len(neg), np.nan)
    for b in range(len(neg)):
        if n_regions[b] <= 0 or fp[b, -1] <= 0:
            continue
        fpr = np.concatenate(([0.0], fp[b] / fp[b, -1]))
        pro = np.concatenate(([0.0], np.minimum(covered[b] / n_regions[b], 1.0)))
        out[b] = area_up_to(fpr, pro, fpr_limit) / fpr_limit
    return out


def image_auroc_weighted(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC of image ``scores (n,)`` with per-image ``weights (B, n)``; ties count one half.

    Returns ``(B,)``; NaN for a resample without both classes.
    """
    scores, labels = validate.scores_and_labels(scores, labels)
    pos, neg = labels == 1, labels == 0
    diff = scores[pos][:, None] - scores[neg][None, :]
    wins = (diff > 0) + 0.5 * (diff == 0)                       # (n_pos, n_neg)
    w_pos, w_neg = weights[:, pos], weights[:, neg]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.einsum("bi,ij,bj->b", w_pos, wins, w_neg) / (w_pos.sum(1) * w_neg.sum(1))
