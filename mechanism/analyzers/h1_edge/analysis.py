"""H1's computation: the tail of each training image, its edge distances and image gradients
(all cells and interior cells), the bootstrap intervals over images — over training seeds ×
images when several seeds' checkpoints are given —, the flip control, and ``run``."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from scipy import stats

from mechanism.analyzers.context import (AnalysisContext, checkpoint_label, paired_stat,
                                         seeds_label, tail_setup, training_seeds)
from mechanism.analyzers.h1_edge.claims import evidence
from mechanism.analyzers.h1_edge.flip_control import FLIPS, flip_control, flipped_features, tail_mask
from mechanism.analyzers.h1_edge.gradient import GRADIENT_METHOD, image_patch_gradients
from mechanism.analyzers.h1_edge.result import (QUANTILE_LEVELS, GradientDistribution, H1Config,
                                                H1Paired, H1Result)
from mechanism.data.mvtec import read_split
from mechanism.errors import MechanismError
from mechanism.eval.detector import Detector
from mechanism.stats.bootstrap import Interval, seeds_bootstrap
from mechanism.stats.edge_distance import (KS_METHOD, edge_distance_grid, edge_distance_ks,
                                           uniform_edge_distance_mean, uniform_edge_distance_pmf)
from mechanism.stats.effect_size import cliffs_sign_matrix, resampled_cliffs_delta
from mechanism.train.checkpoint import Checkpoint


@dataclass(frozen=True)
class _TailSplit:
    """One model's tail selection on the analysed images and its per-image sufficient sums."""
    mask: np.ndarray              # (n, N) bool, True for tail patches
    distances: np.ndarray         # (n, k) int64 edge distances of the tail patches, cells
    gradient_tail: np.ndarray     # (n, k) float64 patch gradients of the tail
    gradient_nontail: np.ndarray  # (n, N − k) float64 patch gradients of the other patches
    interior: np.ndarray          # (4, n) float64 per image on interior cells (edge distance ≥ 1):
                                  # tail gradient sum, tail cells, non-tail sum, non-tail cells
    nll_mean: np.ndarray          # (n,) float64 mean patch NLL per image, nats/dim

    @property
    def ratio_defined(self) -> bool:
        """Whether the gradient ratio has a non-zero denominator on the full data."""
        return bool(self.gradient_nontail.mean() > 0)

    def tail_distance_mean(self, w: np.ndarray) -> float:
        """Mean tail edge distance when image ``i`` counts ``w[i]`` times."""
        return float(w @ self.distances.sum(1) / (w.sum() * self.distances.shape[1]))

    def gradient_ratio(self, w: np.ndarray) -> float:
        """Tail / non-tail mean gradient with image weights ``w`` (NaN for a zero denominator,
        which the bootstrap counts as a non-finite resample)."""
        tail = w @ self.gradient_tail.sum(1) / self.gradient_tail.shape[1]
        nontail = w @ self.gradient_nontail.sum(1) / self.gradient_nontail.shape[1]
        return float(tail / nontail) if nontail > 0 else float("nan")

    def interior_ratio(self, w: np.ndarray) -> float:
        """Tail / non-tail mean gradient of interior cells, pooled with image weights ``w``."""
        tail_sum, tail_n, other_sum, other_n = self.interior @ w
        if tail_n == 0 or other_n == 0 or other_sum == 0:
            return float("nan")
        return float((tail_sum / tail_n) / (other_sum / other_n))

    @property
    def interior_ratio_note(self) -> str:
        """Why the interior ratio is undefined on the full data ("" when it is defined)."""
        tail_sum, tail_n, other_sum, other_n = self.interior.sum(1)
        if tail_n == 0:
            return "no tail patch lies on an interior cell"
        if other_n == 0 or other_sum == 0:
            return "the interior non-tail patches have zero gradient"
        return ""


def _split_tail(nll: torch.Tensor, k: int, distance: np.ndarray, gradient: np.ndarray) -> _TailSplit:
    """Tail = top-k NLL patches of each image; ``nll (n, H, W)``, ``distance (N,)`` cells,
    ``gradient (n, N)``.

    Raises:
        MechanismError: if an NLL is not finite (the tail would be undefined).
    """
    bad = int((~torch.isfinite(nll)).flatten(1).any(1).sum())
    if bad:
        raise MechanismError(f"the checkpoint gives non-finite patch NLLs on {bad} of "
                             f"{len(nll)} images: the tail is undefined")
    mask = tail_mask(nll, k)
    n = len(gradient)
    inner = distance >= 1
    tail_in, other_in = mask & inner, ~mask & inner
    interior = np.stack([np.where(tail_in, gradient, 0.0).sum(1), tail_in.sum(1),
                         np.where(other_in, gradient, 0.0).sum(1), other_in.sum(1)]).astype(np.float64)
    return _TailSplit(mask, np.broadcast_to(distance, mask.shape)[mask].reshape(n, k),
                      gradient[mask].reshape(n, k), gradient[~mask].reshape(n, -1), interior,
                      nll.flatten(1).double().mean(1).numpy())


def _by_index(statistic: Callable[[np.ndarray], float], n: int) -> Callable[[np.ndarray], float]:
    """A statistic of image weights ``(n,)`` as one of resampled image indices (for ``bootstrap``)."""
    return lambda idx: statistic(np.bincount(idx, minlength=n).astype(np.float64))


def _gradient_distribution(tail: np.ndarray, nontail: np.ndarray, bins: int) -> GradientDistribution:
    edges = np.histogram_bin_edges(np.concatenate([tail, nontail]), bins=bins)
    return GradientDistribution(
        tuple(float(e) for e in edges),
        tuple(int(c) for c in np.histogram(tail, edges)[0]),
        tuple(int(c) for c in np.histogram(nontail, edges)[0]),
        QUANTILE_LEVELS,
        tuple(float(q) for q in np.quantile(tail, QUANTILE_LEVELS)),
        tuple(float(q) for q in np.quantile(nontail, QUANTILE_LEVELS)))


def _statistics(cand: _TailSplit, base: _TailSplit | None) -> dict[str, Callable]:
    """One seed's statistics of image weights: the candidate's tail edge-distance mean, Cliff's
    δ and gradient ratios, and with ``base`` the baseline's values and the differences. A ratio
    whose denominator is zero on the full data is left out."""
    k = cand.distances.shape[1]
    signs = cliffs_sign_matrix(cand.gradient_tail, cand.gradient_nontail)
    k_other = cand.gradient_nontail.shape[1]
    statistics = {"tail_distance_mean": cand.tail_distance_mean,
                  "cliffs_delta": lambda wt: resampled_cliffs_delta(signs, wt, k, k_other)}
    if cand.ratio_defined:
        statistics["gradient_ratio"] = cand.gradient_ratio
    if not cand.interior_ratio_note:
        statistics["interior_gradient_ratio"] = cand.interior_ratio
    if base is not None:
        statistics["baseline_tail_distance_mean"] = base.tail_distance_mean
        statistics["difference_tail_distance_mean"] = \
            lambda wt: cand.tail_distance_mean(wt) - base.tail_distance_mean(wt)
        if cand.ratio_defined and base.ratio_defined:
            statistics["baseline_gradient_ratio"] = base.gradient_ratio
            statistics["difference_gradient_ratio"] = \
                lambda wt: cand.gradient_ratio(wt) - base.gradient_ratio(wt)
    return statistics


def _intervals(cands: Sequence[_TailSplit], bases: Sequence[_TailSplit | None],
               cfg: H1Config) -> dict[str, Interval]:
    """Intervals over seeds × images (shared resamples) of ``_statistics`` per training seed,
    each the mean over seeds; a statistic undefined for one seed is left out."""
    n = len(cands[0].distances)
    return seeds_bootstrap([{name: _by_index(fn, n) for name, fn in _statistics(c, b).items()}
                            for c, b in zip(cands, bases)], n, cfg.n_boot, cfg.seed)


def _paired(intervals: dict[str, Interval], baseline: Checkpoint, n_seeds: int) -> H1Paired:
    ratio = paired_stat(intervals, "gradient_ratio")
    note = "" if ratio is not None else \
        "gradient ratio undefined for a model: its non-tail patches have zero gradient"
    return H1Paired(seeds_label(checkpoint_label(baseline), n_seeds), baseline.loss.tail_weight,
                    paired_stat(intervals, "tail_distance_mean"), ratio, note)


def _gradient_notes(gradient: np.ndarray, cands: Sequence[_TailSplit]) -> str:
    notes = []
    if not all(c.ratio_defined for c in cands):
        notes.append("Gradient ratio undefined: the non-tail patches have zero gradient.")
    if np.ptp(gradient) == 0:
        notes.append("Mann-Whitney test undefined: every patch gradient is equal.")
    return " ".join(notes)


def _mann_whitney_p(a: np.ndarray, b: np.ndarray) -> float | None:
    """Two-sided Mann-Whitney p of ``a`` against ``b`` (None: a group is empty or every value
    is equal)."""
    if not len(a) or not len(b) or np.ptp(np.concatenate([a, b])) == 0:
        return None
    return float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def _weakest(values: Sequence[float | None]) -> float | None:
    """The largest p-value over seeds (None if any is undefined)."""
    return None if any(v is None for v in values) else max(values)


def run(detector: Detector, data_root: str | Path, category: str, cfg: H1Config = H1Config(),
        baseline: Detector | None = None, cache_dir: Path | None = None,
        progress: bool = True, replicates: Sequence[tuple[Detector, Detector | None]] = ()
        ) -> H1Result:
    """Run H1 on the training images of ``category``.

    With ``replicates`` — (candidate, baseline) checkpoints of further training seeds — every
    interval runs over training seeds × images (SPEC §7.2), each statistic the mean over seeds;
    the tests' p-values are the largest over seeds (each seed's test must reject); maps,
    histograms and counts pool the seeds. The baseline's tail uses the analysis' k, and the
    analysed checkpoint's features when both share a backbone.

    Args:
        detector: the analysed checkpoint (the first seed).
        baseline: a λ = 0 checkpoint with the same grid; adds the paired table (its seed's
            replicate baselines pair with the replicate candidates).
        cache_dir: feature cache folder, or ``None`` for no cache.

    Raises:
        MechanismError: for missing data, k = N (no non-tail patches), a baseline on
            another grid, or replicates with another backbone or grid.
    """
    ckpt = detector.ckpt
    h, w, r, k = tail_setup(ckpt, cfg.top_k_ratio, "H1", baseline.ckpt if baseline is not None else None)
    models = [(detector, baseline), *replicates]
    seeds = training_seeds([m.ckpt for m, _ in models], "H1")
    for _, base_det in models[1:]:
        if (base_det is None) != (baseline is None):
            raise MechanismError("H1's seed replicates must all have a baseline, or none")
    n_patches = h * w
    samples = read_split(data_root, category, "train")[:cfg.max_images]
    n = len(samples)

    features = detector.features(samples, cache_dir, progress)
    gradient = image_patch_gradients(samples, detector.backbone.cfg.input_shape, h, w,
                                     progress).reshape(n, -1).astype(np.float64)
    distance = edge_distance_grid(h, w).ravel()

    def split(model: Detector) -> _TailSplit:
        feats = features if model.ckpt.backbone == ckpt.backbone else \
            model.features(samples, cache_dir, progress)
        return _split_tail(model.patch_nll(feats, cfg.batch_size, progress), k, distance, gradient)

    cands = [split(c) for c, _ in models]
    bases = [None if b is None else split(b) for _, b in models]

    tail_g = np.concatenate([c.gradient_tail.ravel() for c in cands])
    nontail_g = np.concatenate([c.gradient_nontail.ravel() for c in cands])
    distances = np.concatenate([c.distances.ravel() for c in cands])
    tests = [edge_distance_ks(c.distances.ravel(), h, w) for c in cands]
    weakest = max(tests, key=lambda t: t.p_value)
    uniform_mean = uniform_edge_distance_mean(h, w)
    pmf = uniform_edge_distance_pmf(h, w)
    inner = np.broadcast_to(distance >= 1, cands[0].mask.shape)
    mw_p = _weakest([_mann_whitney_p(c.gradient_tail.ravel(), c.gradient_nontail.ravel())
                     for c in cands])
    interior_mw_p = _weakest([_mann_whitney_p(gradient[c.mask & inner], gradient[~c.mask & inner])
                              for c in cands])
    intervals = _intervals(cands, bases, cfg)
    ratio = intervals.get("gradient_ratio")
    interior_ratio = intervals.get("interior_gradient_ratio")
    control = None
    if cfg.flip_control:
        flipped = {flip: flipped_features(detector, samples, flip, cfg.batch_size, progress)
                   for flip in FLIPS}
        nll = [{flip: model.patch_nll(x, cfg.batch_size, progress) for flip, x in flipped.items()}
               for model, _ in models]
        control = flip_control(
            [c.mask for c in cands], [{flip: tail_mask(v, k) for flip, v in per.items()} for per in nll],
            h, w, cfg.n_boot, cfg.seed,
            [{"original": c.nll_mean, **{flip: v.flatten(1).double().mean(1).numpy()
                                         for flip, v in per.items()}} for c, per in zip(cands, nll)])
    counts = sum(c.mask.sum(axis=0) for c in cands).reshape(h, w)
    n_seeds = len(models)
    interior_note = next((c.interior_ratio_note for c in cands if c.interior_ratio_note), "")
    return H1Result(
        context=AnalysisContext(checkpoint_label(ckpt), category, "train", n, h, w, n_patches, k,
                                float(r), cfg.seed, cfg.n_boot,
                                seeds),
        tail_distance_mean=intervals["tail_distance_mean"],
        tail_distance_std=float(distances.std()),
        uniform_distance_mean=uniform_mean,
        ks_statistic=weakest.statistic, ks_p=weakest.p_value, ks_method=KS_METHOD,
        gradient_method=GRADIENT_METHOD,
        gradient_tail_mean=float(tail_g.mean()), gradient_nontail_mean=float(nontail_g.mean()),
        gradient_ratio=ratio, mw_p=mw_p, interior_gradient_ratio=interior_ratio,
        interior_mw_p=interior_mw_p, cliffs_delta=intervals["cliffs_delta"],
        gradient_note=_gradient_notes(gradient, cands),
        tail_counts_map=tuple(tuple(int(c) for c in row) for row in counts),
        tail_share_map=tuple(tuple(float(c) / (n_seeds * n * k) for c in row) for row in counts),
        tail_distance_counts=tuple(int(c) for c in np.bincount(distances, minlength=len(pmf))),
        uniform_distance_pmf=tuple(float(p) for p in pmf),
        gradient_distribution=_gradient_distribution(tail_g, nontail_g, cfg.gradient_bins),
        flip_control=control,
        paired=None if baseline is None else _paired(intervals, baseline.ckpt, n_seeds),
        evidence=evidence(intervals["tail_distance_mean"], uniform_mean, weakest.p_value,
                          interior_ratio, interior_mw_p, ratio, n, interior_note, n_seeds))
