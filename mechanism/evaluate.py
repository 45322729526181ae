"""Evaluate a checkpoint on a category's test split with the task metrics of SPEC §3."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mechanism.atomic import atomic_path, write_text
from mechanism.data.images import load_mask
from mechanism.data.mvtec import Sample, read_split
from mechanism.detector import Detector
from mechanism.metrics import DetectionMetrics, detection_metrics
from mechanism.scoring import anomaly_maps, image_scores


@dataclass(frozen=True)
class Evaluation:
    """Metrics of one checkpoint on one test split, with everything needed to recompute them.

    Attributes:
        metrics: Image AUROC, Pixel AUROC, Pixel AP, AUPRO@0.3.
        patch_nll: ``(N, H, W)`` float32 per-patch NLL, nats per dimension.
        maps: ``(N, S, S)`` float32 anomaly maps (S = input size).
        masks: ``(N, S, S)`` uint8 ground truth.
        labels: ``(N,)`` 0 good / 1 defective.
        scores: ``(N,)`` image scores.
        samples: the test images, in order.
        image_score: how ``scores`` pooled the patches.
    """
    metrics: DetectionMetrics
    patch_nll: np.ndarray
    maps: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    samples: list[Sample]
    image_score: str
    sigma: float

    def summary(self) -> dict:
        """Plain-typed metrics and context, as written by ``--json``."""
        return {**self.metrics.to_dict(), "category": self.samples[0].category,
                "image_score": self.image_score, "sigma": self.sigma,
                "n_good": int((self.labels == 0).sum()), "n_defective": int(self.labels.sum())}


def evaluate_detector(detector: Detector, data_root: str | Path, category: str | None,
                      image_score: str = "top3_mean", sigma: float = 4.0,
                      cache_dir: Path | None | str = "default", batch_size: int = 64,
                      progress: bool = True) -> Evaluation:
    """Score every test image of ``category`` and compute the task metrics."""
    samples = read_split(data_root, category, "test")
    size = detector.backbone.cfg.input_size
    feats = detector.features(samples, cache_dir, progress)
    nll = detector.patch_nll(feats, batch_size).numpy()
    maps = anomaly_maps(nll, size=size, sigma=sigma)
    masks = np.stack([load_mask(s.mask_path, size) for s in samples])
    labels = np.array([s.label for s in samples], dtype=np.int64)
    scores = image_scores(nll, maps, image_score)
    metrics = detection_metrics(scores, labels, maps, masks)
    return Evaluation(metrics, nll, maps, masks, labels, scores, samples, image_score, sigma)


def save_maps(ev: Evaluation, path: str | Path) -> Path:
    """Write maps ``(N, S, S)`` float32, masks, labels, scores, patch NLL and image paths (.npz)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, maps=ev.maps.astype(np.float32), masks=ev.masks,
                                labels=ev.labels, scores=ev.scores, patch_nll=ev.patch_nll,
                                paths=np.array([str(s.path) for s in ev.samples]))
    return Path(path)


def save_summary(ev: Evaluation, path: str | Path, extra: dict | None = None) -> Path:
    """Write ``ev.summary()`` (plus ``extra``) as JSON."""
    return write_text(path, json.dumps({**ev.summary(), **(extra or {})}, indent=2) + "\n")
