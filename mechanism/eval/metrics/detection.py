"""Detection metrics: image AUROC, pooled pixel AUROC and pixel AP, and AUPRO in one record.

Pixel metrics pool every pixel of the given images (one category) into a single ranking, as
``sklearn.metrics.roc_auc_score`` / ``average_precision_score`` on the flattened arrays (the
tests hold them to those and to Mann-Whitney U / brute-force AP); pixel AP is average precision,
not a trapezoidal area under the precision-recall curve. Both come from one sort of the pooled
pixels (``pooled_pixel_metrics``): a category's ~5 million pixels sorted once instead of twice
by sklearn was most of an evaluation's time.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import roc_auc_score

from mechanism.errors import MechanismError
from mechanism.eval.metrics import validate
from mechanism.eval.metrics.aupro import aupro


def image_auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC of image scores ``(N,)`` (higher = more anomalous) against labels ``(N,)``
    (0 good, 1 defective).

    Raises:
        MechanismError: on shape mismatch, non-finite scores, non-binary labels or one class only.
    """
    scores, labels = validate.scores_and_labels(scores, labels)
    validate.require_both_classes(labels, "image AUROC", "images")
    return float(roc_auc_score(labels, scores))


def _pooled_pixels(maps: np.ndarray, masks: np.ndarray, what: str
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Flattened scores and bool labels of all pixels, checked for ``what``."""
    maps, masks = validate.maps_and_masks(maps, masks)
    validate.require_both_classes(masks, what, "pixels")
    return maps.ravel(), masks.ravel()


def _pixel_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positive counts ``(T,)`` at each distinct score, highest first (a pixel
    is predicted positive when its score is ≥ the threshold)."""
    order = np.argsort(scores)[::-1]
    ranked, hits = scores[order], labels[order]
    last_of_each = np.r_[np.flatnonzero(ranked[1:] != ranked[:-1]), ranked.size - 1]
    tps = np.cumsum(hits, dtype=np.int64)[last_of_each]
    return tps, last_of_each + 1 - tps


def pooled_pixel_metrics(maps: np.ndarray, masks: np.ndarray, what: str = "pixel metrics"
                         ) -> tuple[float, float]:
    """``(pixel AUROC, pixel AP)`` over all pixels of maps ``(N, H, W)`` against masks
    ``(N, H, W)``, pooled, from one sort.

    Raises:
        MechanismError: on shape mismatch, non-finite scores, non-binary masks or one class only.
    """
    scores, labels = _pooled_pixels(maps, masks, what)
    tps, fps = _pixel_curve(scores, labels)
    tpr, fpr = np.r_[0.0, tps / tps[-1]], np.r_[0.0, fps / fps[-1]]
    auroc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    ap = float(np.sum(np.diff(tpr) * tps / (tps + fps)))
    return auroc, ap


def pixel_auroc(maps: np.ndarray, masks: np.ndarray) -> float:
    """ROC AUC over all pixels of maps ``(N, H, W)`` against masks ``(N, H, W)``, pooled.

    Raises:
        MechanismError: on shape mismatch, non-finite scores, non-binary masks or one class only.
    """
    return pooled_pixel_metrics(maps, masks, "pixel AUROC")[0]


def pixel_ap(maps: np.ndarray, masks: np.ndarray) -> float:
    """Average precision over all pixels of maps ``(N, H, W)`` against masks ``(N, H, W)``, pooled.

    Raises:
        MechanismError: on shape mismatch, non-finite scores, non-binary masks or one class only.
    """
    return pooled_pixel_metrics(maps, masks, "pixel AP")[1]


METRIC_LABELS = {"image_auroc": "Image AUROC", "pixel_auroc": "Pixel AUROC", "pixel_ap": "Pixel AP",
                 "aupro": "AUPRO@0.3"}
"""How tables and figures name each metric of ``DetectionMetrics``."""


@dataclass(frozen=True)
class DetectionMetrics:
    """Task metrics of one category; all rates are fractions in [0, 1]."""

    image_auroc: float  # ROC AUC of image scores, good = 0, defective = 1
    pixel_auroc: float  # ROC AUC over all test pixels pooled
    pixel_ap: float  # average precision over all test pixels pooled
    aupro: float  # normalised area under the PRO curve up to aupro_fpr_limit
    aupro_fpr_limit: float  # upper FPR end of the AUPRO integral
    n_images: int  # test images
    n_defective: int  # test images labelled defective

    def to_dict(self) -> dict[str, float | int]:
        """Plain JSON-ready dict, one key per field."""
        return asdict(self)


def detection_metrics(image_scores: np.ndarray, labels: np.ndarray, maps: np.ndarray,
                      masks: np.ndarray, fpr_limit: float = 0.3) -> DetectionMetrics:
    """All detection metrics of one category.

    Args:
        image_scores: ``(N,)`` image scores, higher = more anomalous.
        labels: ``(N,)`` 0 good, 1 defective.
        maps: ``(N, H, W)`` anomaly maps.
        masks: ``(N, H, W)`` ground-truth masks, bool or 0/1.
        fpr_limit: AUPRO integration limit, in (0, 1].

    Raises:
        MechanismError: if the image and pixel inputs disagree on N, or as the single metrics.
    """
    image_scores, labels = validate.scores_and_labels(image_scores, labels)
    maps, masks = validate.maps_and_masks(maps, masks)
    if maps.shape[0] != labels.shape[0]:
        raise MechanismError(f"{labels.shape[0]} image scores but {maps.shape[0]} anomaly maps")
    auroc, ap = pooled_pixel_metrics(maps, masks)
    return DetectionMetrics(
        image_auroc=image_auroc(image_scores, labels),
        pixel_auroc=auroc,
        pixel_ap=ap,
        aupro=aupro(maps, masks, fpr_limit),
        aupro_fpr_limit=float(fpr_limit),
        n_images=int(labels.size),
        n_defective=int(np.count_nonzero(labels)),
    )
