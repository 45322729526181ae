"""Image AUROC, pooled pixel AUROC / AP and the DetectionMetrics record against independent
references (pairwise AUC, Mann-Whitney U, brute-force average precision)."""
import json

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from mechanism.errors import MechanismError
from mechanism.eval.metrics import (DetectionMetrics, aupro, detection_metrics, image_auroc,
                                    pixel_ap, pixel_auroc)


def pairwise_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counting one half."""
    pos, neg = scores[labels == 1][:, None], scores[labels == 0][None, :]
    return float(np.mean((pos > neg) + 0.5 * (pos == neg)))


def brute_force_ap(scores: np.ndarray, labels: np.ndarray) -> float:
    """Σ_k (R_k − R_{k−1}) · P_k over thresholds at each distinct score, predicted = >= t."""
    ap, previous_recall = 0.0, 0.0
    for threshold in np.unique(scores)[::-1]:
        predicted = scores >= threshold
        true_positives = np.sum(predicted & (labels == 1))
        recall = true_positives / np.sum(labels == 1)
        ap += (recall - previous_recall) * true_positives / np.sum(predicted)
        previous_recall = recall
    return float(ap)


def pixel_case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Four 10×10 float32 maps with rectangular defects in two images and quantised scores
    (ties across classes)."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((4, 10, 10), dtype=np.uint8)
    masks[1, 2:5, 3:7] = 1
    masks[3, 6:9, 1:3] = 1
    maps = (masks + rng.normal(scale=0.7, size=masks.shape)).round(1).astype(np.float32)
    return maps, masks


@pytest.mark.parametrize("seed", range(3))
def test_image_auroc_equals_pairwise_probability(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(40) < 0.4
    scores = np.round(labels + rng.normal(size=40), 1)  # ties
    assert image_auroc(scores, labels.astype(int)) == pytest.approx(
        pairwise_auc(scores, labels), abs=1e-12)


def test_image_auroc_extremes():
    labels = np.array([0, 0, 1, 1])
    assert image_auroc(np.array([0.1, 0.2, 0.3, 0.4]), labels) == 1.0
    assert image_auroc(np.array([0.4, 0.3, 0.2, 0.1]), labels) == 0.0


@pytest.mark.parametrize("seed", range(3))
def test_pixel_auroc_pools_all_pixels(seed):
    maps, masks = pixel_case(seed)
    flat_scores, flat_labels = maps.ravel(), masks.ravel()
    u = mannwhitneyu(flat_scores[flat_labels == 1], flat_scores[flat_labels == 0]).statistic
    expected = u / (np.sum(flat_labels == 1) * np.sum(flat_labels == 0))
    assert pixel_auroc(maps, masks) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_pixel_ap_pools_all_pixels(seed):
    maps, masks = pixel_case(seed)
    assert pixel_ap(maps, masks) == pytest.approx(
        brute_force_ap(maps.ravel().astype(np.float64), masks.ravel()), abs=1e-12)


def test_pixel_ap_is_not_the_trapezoidal_pr_area():
    # Scores 3, 2, 1 with labels 1, 0, 1: AP = ½·1 + ½·(2/3) = 5/6, while the trapezoid under
    # the PR points (0, 1), (½, 1), (1, ⅔) is ½ + ½·(1 + ⅔)/2 = 11/12.
    maps = np.array([[[3.0, 2.0, 1.0]]])
    masks = np.array([[[1, 0, 1]]])
    assert pixel_ap(maps, masks) == pytest.approx(5 / 6, abs=1e-12)


def test_detection_metrics_collects_the_single_metrics():
    maps, masks = pixel_case(0)
    labels = masks.reshape(4, -1).max(axis=1)
    scores = maps.reshape(4, -1).max(axis=1)
    result = detection_metrics(scores, labels, maps, masks, fpr_limit=0.2)
    assert result == DetectionMetrics(
        image_auroc=image_auroc(scores, labels), pixel_auroc=pixel_auroc(maps, masks),
        pixel_ap=pixel_ap(maps, masks), aupro=aupro(maps, masks, 0.2), aupro_fpr_limit=0.2,
        n_images=4, n_defective=2)
    assert json.loads(json.dumps(result.to_dict())) == result.to_dict()
    assert list(result.to_dict()) == ["image_auroc", "pixel_auroc", "pixel_ap", "aupro",
                                      "aupro_fpr_limit", "n_images", "n_defective"]


@pytest.mark.parametrize("scores, labels, message", [
    ([0.1, 0.2, 0.3], [0, 0, 0], "all 3 images are normal"),
    ([0.1, 0.2, 0.3], [1, 1, 1], "all 3 images are anomalous"),
    ([0.1, np.nan, 0.3], [0, 1, 1], "1 of 3 values are not finite"),
    ([0.1, np.inf, 0.3], [0, 1, 1], "not finite"),
    ([0.1, 0.2, 0.3], [0, 1], "shape"),
    ([0.1, 0.2, 0.3], [0, 2, 1], "binary"),
])
def test_image_auroc_bad_inputs_raise(scores, labels, message):
    with pytest.raises(MechanismError, match=message):
        image_auroc(np.array(scores), np.array(labels))


@pytest.mark.parametrize("metric", [pixel_auroc, pixel_ap])
@pytest.mark.parametrize("change, message", [
    (lambda maps, masks: (maps, np.zeros_like(masks)), "all 400 pixels are normal"),
    (lambda maps, masks: (maps, np.ones_like(masks)), "all 400 pixels are anomalous"),
    (lambda maps, masks: (np.where(masks > 0, np.nan, maps), masks), "not finite"),
    (lambda maps, masks: (maps[:3], masks), "shape"),
    (lambda maps, masks: (maps.reshape(4, 100), masks.reshape(4, 100)), "shape"),
])
def test_pixel_metrics_bad_inputs_raise(metric, change, message):
    with pytest.raises(MechanismError, match=message):
        metric(*change(*pixel_case(0)))


def test_detection_metrics_rejects_count_mismatch():
    maps, masks = pixel_case(0)
    with pytest.raises(MechanismError, match="3 image scores but 4 anomaly maps"):
        detection_metrics(np.array([0.1, 0.5, 0.2]), np.array([0, 1, 1]), maps, masks)


@pytest.mark.parametrize("quantum", [0.0, 0.05])
def test_pooled_pixel_metrics_equal_sklearn_on_many_pixels(quantum):
    """The one-sort AUROC and AP against sklearn's on 200k pixels, continuous and with ties."""
    from sklearn.metrics import average_precision_score, roc_auc_score
    from mechanism.eval.metrics.detection import pooled_pixel_metrics
    rng = np.random.default_rng(7)
    masks = (rng.random((8, 160, 160)) < 0.03).astype(np.uint8)
    maps = (1.5 * masks + rng.normal(size=masks.shape)).astype(np.float32)
    if quantum:
        maps = (np.round(maps / quantum) * quantum).astype(np.float32)
    auroc, ap = pooled_pixel_metrics(maps, masks)
    assert auroc == pytest.approx(roc_auc_score(masks.ravel(), maps.ravel()), abs=1e-12)
    assert ap == pytest.approx(average_precision_score(masks.ravel(), maps.ravel()), abs=1e-12)
