"""AUPRO: area under the per-region-overlap curve, MVTec AD reference definition (SPEC §3).

Ground-truth regions are the 8-connected components of each image's mask. For a threshold t a
pixel is predicted anomalous when its score is >= t; over all distinct score values t:

* FPR(t) = share of all normal pixels (mask 0, pooled over every image) predicted anomalous;
* PRO(t) = mean over all regions (pooled over every image) of |predicted ∩ region| / |region|.

The curve starts at (0, 0) and ends at (1, 1). AUPRO is its trapezoid area over
FPR ∈ [0, fpr_limit], the curve linearly interpolated at ``fpr_limit``, divided by
``fpr_limit``: a perfect detector scores 1 and no value exceeds 1.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from mechanism.errors import MechanismError
from mechanism.eval.metrics import validate

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def region_weights(masks: np.ndarray) -> tuple[np.ndarray, int]:
    """Per-pixel PRO increment ``1 / |region|`` (0 on normal pixels) and the region count.

    Args:
        masks: ``(N, H, W)`` bool ground truth.

    Returns:
        ``(N * H * W,)`` float64 weights in the flattened order of ``masks``, and the number of
        8-connected regions of each image ``(N,)`` int64.
    """
    weights = np.zeros(masks.shape, dtype=np.float64)
    n_regions = np.zeros(len(masks), dtype=np.int64)
    for i, (image_mask, image_weights) in enumerate(zip(masks, weights)):
        region_ids, n = ndimage.label(image_mask, structure=EIGHT_CONNECTED)
        if n:
            region_size = np.bincount(region_ids.ravel())[1:]  # id 0 is the background
            inverse_size = np.concatenate(([0.0], 1.0 / region_size))
            image_weights[...] = inverse_size[region_ids]
        n_regions[i] = n
    return weights.ravel(), n_regions


def pro_curve(maps: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The PRO curve, one point per distinct score value, from (0, 0) to (1, 1).

    Pixels with equal scores enter the prediction together, so ties never produce extra points.

    Args:
        maps: ``(N, H, W)`` anomaly scores, higher = more anomalous.
        masks: ``(N, H, W)`` ground truth, bool or 0/1.

    Returns:
        ``(fpr, pro)``, each ``(K + 1,)`` float64 with K the number of distinct scores; ``fpr``
        non-decreasing.

    Raises:
        MechanismError: on shape mismatch, non-finite scores, non-binary masks, masks without
            any anomalous region or without any normal pixel.
    """
    maps, masks = validate.maps_and_masks(maps, masks)
    region_weight, per_image = region_weights(masks)
    n_regions = int(per_image.sum())
    normal = ~masks.ravel()
    n_normal = int(np.count_nonzero(normal))
    if n_regions == 0:
        raise MechanismError("AUPRO is undefined: the masks contain no anomalous region")
    if n_normal == 0:
        raise MechanismError("AUPRO is undefined: the masks contain no normal pixel")

    scores = maps.ravel()
    order = np.argsort(scores)[::-1]  # descending score
    sorted_scores = scores[order]
    last_of_each_score = np.append(sorted_scores[1:] != sorted_scores[:-1], True)
    false_positives = np.cumsum(normal[order], dtype=np.int64)[last_of_each_score]
    overlap_sum = np.cumsum(region_weight[order])[last_of_each_score]
    fpr = np.concatenate(([0.0], false_positives / n_normal))
    # the cumulative sum ends at n_regions up to rounding; keep PRO within [0, 1]
    pro = np.concatenate(([0.0], np.minimum(overlap_sum / n_regions, 1.0)))
    return fpr, pro


def area_up_to(x: np.ndarray, y: np.ndarray, x_max: float) -> float:
    """Trapezoid area under the polyline (x, y) for x ∈ [x[0], x_max].

    ``x`` is non-decreasing and ``x[-1] >= x_max``; the polyline is linearly interpolated at
    ``x_max`` when no point lies exactly there.
    """
    n_inside = int(np.searchsorted(x, x_max, side="right"))
    xs, ys = x[:n_inside], y[:n_inside]
    if xs[-1] < x_max:
        x0, y0, x1, y1 = x[n_inside - 1], y[n_inside - 1], x[n_inside], y[n_inside]
        xs = np.append(xs, x_max)
        ys = np.append(ys, y0 + (y1 - y0) * (x_max - x0) / (x1 - x0))
    return float(np.sum(np.diff(xs) * (ys[1:] + ys[:-1]) / 2.0))


def aupro(maps: np.ndarray, masks: np.ndarray, fpr_limit: float = 0.3) -> float:
    """Normalised area under the PRO curve up to ``fpr_limit``, in [0, 1].

    Args:
        maps: ``(N, H, W)`` anomaly scores, higher = more anomalous.
        masks: ``(N, H, W)`` ground truth, bool or 0/1.
        fpr_limit: upper end of the integrated FPR range, in (0, 1].

    Raises:
        MechanismError: if ``fpr_limit`` is outside (0, 1], or as :func:`pro_curve`.
    """
    if not 0.0 < fpr_limit <= 1.0:
        raise MechanismError(f"AUPRO fpr_limit must lie in (0, 1], got {fpr_limit}")
    fpr, pro = pro_curve(maps, masks)
    return area_up_to(fpr, pro, fpr_limit) / fpr_limit
