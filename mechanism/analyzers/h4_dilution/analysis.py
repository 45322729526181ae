"""H4 end to end on a checkpoint: ratios, purity rows, best ratio, performance contrasts and
the evidence."""
from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from mechanism.analyzers.context import AnalysisContext, checkpoint_label, training_seeds
from mechanism.analyzers.h4_dilution.purity import ratio_rows, selection_and_reference
from mechanism.analyzers.h4_dilution.claims import best_ratio, evidence
from mechanism.analyzers.h4_dilution.result import (H4Config, H4Result, MeasuredRatios,
                                                     PerformanceContrast)
from mechanism.data.mvtec import read_split
from mechanism.errors import MechanismError
from mechanism.eval.detector import Detector
from mechanism.stats.purity import chance_purity
from mechanism.train.loss import tail_k


def run(detector: Detector, data_root: str | Path, category: str, cfg: H4Config,
        selection: Detector | None = None, reference: Detector | None = None,
        measured: MeasuredRatios | None = None,
        performance: tuple[PerformanceContrast, ...] = (), mean_loss_check: float | None = None,
        cache_dir: Path | None = None,
        progress: bool = True, replicates: Sequence[Detector] = ()) -> H4Result:
    """Measure top-k ratio dilution on ``category``'s training images.

    Args:
        detector: the analysed checkpoint.
        selection: rank the selection by this checkpoint's clean-view NLL instead of the
            analysed checkpoint's augmented view.
        reference: truly hard patches from this checkpoint's clean-view NLL instead of the
            analysed checkpoint's NLL averaged over ``cfg.n_views`` views.
        measured: Pixel AP / Image AUROC measured per ratio (a sweep's); its ratios are
            analysed too. None: no measured columns.
        performance: the pre-registered contrasts r = 2% vs 10% and 100% (H4.performance).
        mean_loss_check: measured Pixel AP(r = 100%) − Pixel AP(λ = 0) of identically seeded
            runs (an identity: r = 100% is the mean loss); None: not measured.
        cache_dir: feature cache folder (``None``: no cache).
        replicates: the same condition's checkpoints of further training seeds: purity then
            runs over seeds × images (each value the mean over seeds); the augmented views'
            backbone features are computed once for all of them.

    Raises:
        MechanismError: unreadable data, a selection/reference checkpoint on another grid, or
            non-finite NLL.
    """
    h, w, _ = detector.ckpt.grid
    n_patches = detector.ckpt.n_patches
    for role, other in (("selection", selection), ("reference", reference)):
        if other is not None and other.ckpt.grid != detector.ckpt.grid:
            raise MechanismError(f"{role} checkpoint has grid {other.ckpt.grid} (H, W, D), the "
                                 f"analysed one {detector.ckpt.grid}")
    # with a selection and a reference checkpoint no seed's own model enters the purity
    models = [detector] if selection is not None and reference is not None else [detector, *replicates]
    seeds = training_seeds([m.ckpt for m in models], "H4")
    extra = [] if measured is None else \
        [r for r in measured.metrics if not any(math.isclose(r, c) for c in cfg.ratios)]
    ratios = sorted(set(list(cfg.ratios) + extra))
    samples = read_split(data_root, category, "train")[:cfg.max_images]
    selection_nll, selection_source, reference_nll, reference_source = selection_and_reference(
        models, samples, cfg, selection, reference, cache_dir, progress)

    k_ref = tail_k(n_patches, cfg.reference_ratio)
    rows = ratio_rows(selection_nll, reference_nll, ratios, k_ref, measured, cfg)
    effective = [row.effective_concentration.estimate for row in rows]
    pixel_ap = None if measured is None else \
        [None if row.pixel_ap is None else row.pixel_ap.mean for row in rows]
    best, basis = best_ratio(ratios, effective, pixel_ap)
    chance = chance_purity(k_ref, n_patches)
    sweep = None if measured is None else measured.source
    context = AnalysisContext(
        checkpoint=checkpoint_label(detector.ckpt), category=category, split="train",
        n_images=len(samples), grid_h=h, grid_w=w, n_patches=n_patches,
        k=tail_k(n_patches, detector.ckpt.loss.top_k_ratio),
        top_k_ratio=detector.ckpt.loss.top_k_ratio, seed=cfg.seed, n_boot=cfg.n_boot,
        training_seeds=seeds)
    return H4Result(context, {**asdict(cfg), "ratios": list(cfg.ratios)}, k_ref, chance,
                    cfg.n_views if reference is None else None, selection_source, reference_source,
                    sweep, tuple(rows), best, basis, tuple(performance),
                    evidence(rows, chance, performance, len(samples), sweep, mean_loss_check,
                             context.n_seeds))
