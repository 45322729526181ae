"""Evaluate a checkpoint on a category's test split with the task metrics of SPEC §3."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mechanism.data.images import load_mask
from mechanism.data.mvtec import Sample, read_split
from mechanism.eval.detector import Detector
from mechanism.eval.metrics import DetectionMetrics, detection_metrics
from mechanism.eval.scoring import (DEFAULT_IMAGE_SCORE, DEFAULT_MAP_SCORE, DEFAULT_SIGMA,
                                    anomaly_maps, check_scoring, image_scores)
from mechanism.io.atomic import atomic_path, write_text
from mechanism.io.transaction import commit_together


@dataclass(frozen=True)
class Evaluation:
    """Metrics of one checkpoint on one test split, with everything needed to recompute them.

    Attributes:
        metrics: Image AUROC, Pixel AUROC, Pixel AP, AUPRO@0.3.
        patch_nll: ``(N, H, W)`` float32 per-patch NLL, nats per dimension.
        patch_scores: ``(N, H, W)`` float32 per-patch score the maps and image scores are made
            of (``map_score``: the NLL itself, or the latent energy), nats per dimension.
        maps: ``(N, S_h, S_w)`` float32 anomaly maps at the input shape.
        masks: ``(N, S_h, S_w)`` uint8 ground truth at the input shape (nearest-neighbour resize).
        labels: ``(N,)`` 0 good / 1 defective.
        scores: ``(N,)`` image scores.
        samples: the test images, in order.
        map_score: which per-patch score (``mechanism.flow.PATCH_SCORES``) the maps show.
        image_score: how ``scores`` pooled the patches.
        sigma: blur of the maps, pixels.
    """
    metrics: DetectionMetrics
    patch_nll: np.ndarray
    patch_scores: np.ndarray
    maps: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    samples: list[Sample]
    map_score: str
    image_score: str
    sigma: float

    def summary(self) -> dict:
        """Plain-typed metrics and context, as written by ``--json``."""
        return {**self.metrics.to_dict(), "category": self.samples[0].category,
                "map_score": self.map_score, "image_score": self.image_score, "sigma": self.sigma,
                "n_good": int((self.labels == 0).sum()), "n_defective": int(self.labels.sum())}


def evaluate_detector(detector: Detector, data_root: str | Path, category: str | None,
                      image_score: str = DEFAULT_IMAGE_SCORE, sigma: float = DEFAULT_SIGMA,
                      cache_dir: Path | None = None, batch_size: int = 64,
                      progress: bool = True, map_score: str = DEFAULT_MAP_SCORE) -> Evaluation:
    """Score every test image of ``category`` and compute the task metrics; the maps and image
    scores are made of the per-patch ``map_score`` (see ``mechanism.eval.scoring``).

    ``cache_dir``: the feature cache folder; ``None``: no cache (the backbone always runs)."""
    check_scoring(map_score, image_score)
    samples = read_split(data_root, category, "test")
    size = detector.backbone.cfg.input_shape
    feats = detector.features(samples, cache_dir, progress)
    per_patch = {n: v.numpy() for n, v in
                 detector.patch_scores(feats, tuple(dict.fromkeys(("nll", map_score))), batch_size).items()}
    maps = anomaly_maps(per_patch[map_score], size=size, sigma=sigma)
    masks = np.stack([load_mask(s.mask_path, size, s.path) for s in samples])
    labels = np.array([s.label for s in samples], dtype=np.int64)
    scores = image_scores(per_patch[map_score], maps, image_score)
    metrics = detection_metrics(scores, labels, maps, masks)
    return Evaluation(metrics, per_patch["nll"], per_patch[map_score], maps, masks, labels, scores,
                      samples, map_score, image_score, sigma)


def save_maps(ev: Evaluation, path: str | Path) -> Path:
    """Write maps ``(N, S_h, S_w)`` float32, masks, labels, scores, the per-patch NLL and map score
    ``(N, H, W)`` and the image paths (.npz)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, maps=ev.maps.astype(np.float32), masks=ev.masks,
                                labels=ev.labels, scores=ev.scores, patch_nll=ev.patch_nll,
                                patch_scores=ev.patch_scores, map_score=np.array(ev.map_score),
                                paths=np.array([str(s.path) for s in ev.samples]))
    return Path(path)


def save_summary(ev: Evaluation, path: str | Path, extra: dict | None = None) -> Path:
    """Write ``ev.summary()`` (plus ``extra``) as JSON."""
    return write_text(path, json.dumps({**ev.summary(), **(extra or {})}, indent=2) + "\n")


def write_evaluation(ev: Evaluation, summary: Path | None = None, maps: Path | None = None,
                     extra: dict | None = None) -> None:
    """``save_summary`` and ``save_maps`` as one output: files in one folder are committed
    together (``io.transaction.commit_together``: both new or both old after a kill), each under
    its output's lock, a killed writer's leftovers removed."""
    writers = {path: write for path, write in (
        (summary, lambda to: save_summary(ev, to, extra)), (maps, lambda to: save_maps(ev, to)))
        if path is not None}
    folders: dict[str, list[Path]] = {}
    for path in map(Path, writers):
        folders.setdefault(os.path.abspath(path.parent), []).append(path)
    for paths in folders.values():
        with commit_together(*paths) as staged:
            for path, to in zip(paths, staged):
                writers[path](to)
