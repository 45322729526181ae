"""H4's measurement: the NLL that selects each image's top-k patches, the NLL that defines its
truly hard patches, and purity and effective concentration per ratio over shared resamples —
over training seeds × images when several seeds' models are measured on the same images."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from mechanism.analyzers.context import checkpoint_label
from mechanism.analyzers.h4_dilution.result import H4Config, MeasuredRatios, RatioRow
from mechanism.data.augment import apply_views, draw_view, maps_to_original_grid
from mechanism.data.images import load_image
from mechanism.data.mvtec import Sample
from mechanism.errors import MechanismError
from mechanism.eval.detector import Detector
from mechanism.flow import patch_nll
from mechanism.stats.bootstrap import seeds_bootstrap
from mechanism.stats.purity import oracle_purity, topk_purity
from mechanism.train.loss import tail_k

SELECTION_VIEW = 0             # view number of the selection's augmented view (reference: 1..M−1)


def augmented_nll(detectors: Sequence[Detector], samples: list[Sample], views: Sequence[int],
                  cfg: H4Config, progress: bool = True) -> list[dict[int, torch.Tensor]]:
    """Per model, per-patch NLL ``(n, H, W)`` float32 (nats/dim, CPU) of each augmented view
    number in ``views``, mapped back to the original grid. Image i's view v is
    ``draw_view(cfg.augment, cfg.seed, v, i)``; the backbone runs on the views once (not cached)
    and every model — all sharing the first one's backbone — scores them."""
    h, w, _ = detectors[0].ckpt.grid
    size = detectors[0].backbone.cfg.input_shape
    out = [{v: torch.empty((len(samples), h, w)) for v in views} for _ in detectors]
    with torch.inference_mode():
        for start in tqdm(range(0, len(samples), cfg.batch_size), desc="H4 augmented views",
                          disable=not progress):
            batch = samples[start:start + cfg.batch_size]
            images = torch.from_numpy(np.stack([load_image(s.path, size) for s in batch]))
            for v in views:
                drawn = [draw_view(cfg.augment, cfg.seed, v, start + i) for i in range(len(batch))]
                features = detectors[0].image_features(apply_views(images, drawn))
                for detector, nll in zip(detectors, out):
                    nll[v][start:start + len(batch)] = maps_to_original_grid(
                        patch_nll(detector.flow(features.to(detector.device))).cpu(), drawn)
    return out


def _clean_nll(detector: Detector, samples: list[Sample], cfg: H4Config,
               cache_dir: Path | None, progress: bool) -> torch.Tensor:
    """``(n, H, W)`` per-patch NLL of the clean images, features from the cache."""
    return detector.patch_nll(detector.features(samples, cache_dir, progress), cfg.batch_size, progress)


def _patch_nll_rows(nll: torch.Tensor, what: str) -> np.ndarray:
    """Per-image patch NLL ``(n, H, W)`` as numpy rows ``(n, N)``; a non-finite NLL is an error
    naming ``what`` (MechanismError)."""
    flat = nll.flatten(1).numpy()
    if not np.all(np.isfinite(flat)):
        raise MechanismError(f"{what} gives non-finite NLL on {int((~np.isfinite(flat)).sum())} patches")
    return flat


def selection_and_reference(detectors: Sequence[Detector], samples: list[Sample], cfg: H4Config,
                            selection: Detector | None, reference: Detector | None,
                            cache_dir: Path | None, progress: bool
                            ) -> tuple[list[np.ndarray], str, list[np.ndarray], str]:
    """``(selection NLL, what ranked it, reference NLL, what defined it)``, one NLL ``(n, N)``
    per model of ``detectors`` (training seeds of one condition, sharing a backbone).

    Selection: each model on augmented view ``SELECTION_VIEW``, or ``selection`` on the clean
    view. Reference: each model's NLL averaged over the clean view and augmented views
    ``1..M−1``, or ``reference`` on the clean view.

    Raises:
        MechanismError: non-finite NLL.
    """
    views = ([SELECTION_VIEW] if selection is None else []) + \
        (list(range(1, cfg.n_views)) if reference is None else [])
    augmented = augmented_nll(detectors, samples, views, cfg, progress) if views else \
        [{} for _ in detectors]
    if selection is None:
        selection_nll = [_patch_nll_rows(a[SELECTION_VIEW], "the checkpoint's augmented view")
                         for a in augmented]
        selection_source = (f"the checkpoint on one augmented view per image ({cfg.augment.describe()}; "
                            f"seed {cfg.seed}, view {SELECTION_VIEW})")
    else:
        selection_nll = [_patch_nll_rows(_clean_nll(selection, samples, cfg, cache_dir, progress),
                                         "the selection checkpoint")] * len(detectors)
        selection_source = f"checkpoint {checkpoint_label(selection.ckpt)} on the clean view"
    if reference is None:
        reference_nll = []
        for detector, views_nll in zip(detectors, augmented):
            clean = _clean_nll(detector, samples, cfg, cache_dir, progress)
            mean_nll = torch.stack([clean, *(views_nll[v] for v in range(1, cfg.n_views))]).mean(dim=0)
            reference_nll.append(_patch_nll_rows(mean_nll, "the checkpoint"))
        reference_source = (f"the checkpoint's NLL averaged over M = {cfg.n_views} views (clean + "
                            f"{cfg.n_views - 1} augmented, seed {cfg.seed}, views 1–{cfg.n_views - 1})"
                            if cfg.n_views > 1 else "the checkpoint's clean-view NLL (M = 1)")
    else:
        reference_nll = [_patch_nll_rows(_clean_nll(reference, samples, cfg, cache_dir, progress),
                                          "the reference checkpoint")] * len(detectors)
        reference_source = f"checkpoint {checkpoint_label(reference.ckpt)} on the clean view"
    return selection_nll, selection_source, reference_nll, reference_source


def ratio_rows(selection_nll: Sequence[np.ndarray], reference_nll: Sequence[np.ndarray],
               ratios: list[float], k_ref: int, measured: MeasuredRatios | None,
               cfg: H4Config) -> list[RatioRow]:
    """Purity and effective concentration per ratio from each training seed's ``(n, N)``
    selection and reference NLL (one of each per seed, the same images), with the metrics
    measured at each ratio; intervals over seeds × images (shared resamples), each value the
    mean over seeds."""
    n_images, n_patches = selection_nll[0].shape
    ks = [tail_k(n_patches, r) for r in ratios]
    per_seed = []
    for sel, ref in zip(selection_nll, reference_nll):
        statistics = {}
        for i, k in enumerate(ks):
            purity = topk_purity(sel, ref, k, k_ref)   # (n,) per image
            statistics[f"purity{i}"] = lambda idx, p=purity: float(p[idx].mean())
            statistics[f"effective{i}"] = lambda idx, p=purity, a=n_patches / k: float(p[idx].mean()) * a
        per_seed.append(statistics)
    intervals = seeds_bootstrap(per_seed, n_images, cfg.n_boot, cfg.seed)
    rows = []
    for i, (r, k) in enumerate(zip(ratios, ks)):
        perf = measured.at(r) if measured is not None else {}
        rows.append(RatioRow(r, k, n_patches / k, intervals[f"purity{i}"], oracle_purity(k, k_ref),
                             intervals[f"effective{i}"], perf.get("pixel_ap"), perf.get("image_auroc"),
                             k == n_patches))
    return rows
