"""H1 — tail patches sit on image boundaries (SPEC §4 H1).

On the category's training images (all normal), the tail of each image is its top-k patches by
the checkpoint's per-patch NLL (``k = max(1, round(N·r))``); every other patch is non-tail.

* Location: the tail patches' edge distances ``d = min(i, j, H−1−i, W−1−j)`` (cells) against the
  exact law of ``d`` for a uniformly random cell (one-sample KS, ``KS_METHOD``).
* Image content: the Sobel gradient magnitude of the grey input image averaged over each patch's
  pixel footprint (``GRADIENT_METHOD``), tail vs non-tail: means, ratio, Mann-Whitney U
  (two-sided, scipy's asymptotic normal approximation with tie correction), Cliff's δ.

95% intervals are percentile bootstraps over images built from per-image sums (edge-distance
mean, gradient ratio) and pairwise sign sums (Cliff's δ). The KS and Mann-Whitney p-values treat
patches as independent; the k tail cells of one image are distinct and neighbouring patches are
correlated, so those p-values are optimistic about independence — the image-level intervals are
the robust evidence.

Verdict (``verdict``): the location effect holds when KS p < α **and** the tail lies nearer the
edges than a uniform cell (tail mean < uniform mean; a tail that avoids the edges is not evidence
for H1); the gradient effect holds when Mann-Whitney p < α and the gradient ratio ≥ 1.10.
Both → SUPPORTED, exactly one → PARTIAL, neither → NOT SUPPORTED.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
from scipy import stats
from tqdm.auto import tqdm

from mechanism.analyzers.context import (ALPHA, AnalysisContext, Verdict, check_common_settings,
                                         checkpoint_label, tail_setup)
from mechanism.train.checkpoint import Checkpoint
from mechanism.data.images import load_image
from mechanism.data.mvtec import Sample, read_split
from mechanism.eval.detector import Detector
from mechanism.errors import MechanismError
from mechanism.train.loss import select_tail
from mechanism.stats.bootstrap import Interval, PairedStat, bootstrap
from mechanism.stats.edge_distance import (KS_METHOD, edge_distance_grid, edge_distance_ks,
                                           uniform_edge_distance_mean, uniform_edge_distance_pmf)
from mechanism.stats.effect_size import cliffs_sign_matrix, resampled_cliffs_delta
from mechanism.io.text import format_p, markdown_table

RATIO_THRESHOLD = 1.10    # gradient ratio (tail / non-tail) the gradient effect needs (SPEC §4 H1)
LUMA_601 = np.array([0.299, 0.587, 0.114], dtype=np.float32)   # ITU-R BT.601 weights of R, G, B
GRADIENT_METHOD = ("cv2.Sobel ksize 3 (border reflect-101) of the ITU-R BT.601 luma of the "
                   "input-size RGB image in [0, 1]; magnitude sqrt(gx² + gy²) averaged over each "
                   "patch's S/H × S/W pixels")
QUANTILE_LEVELS = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)


@dataclass(frozen=True)
class H1Config:
    """Settings of the H1 analysis."""
    seed: int = 0                        # seeds the bootstrap resamples
    n_boot: int = 1000                   # bootstrap resamples for 95% intervals (0 = none)
    batch_size: int = 32                 # images per flow batch
    max_images: int | None = None        # use the first n training images (sorted by name)
    top_k_ratio: float | None = None     # r defining the tail; None: the checkpoint's
    gradient_bins: int = 50              # histogram bins of the stored gradient distributions

    def __post_init__(self):
        check_common_settings(self)
        if self.top_k_ratio is not None and not 0.0 < self.top_k_ratio <= 1.0:
            raise MechanismError(f"top-k ratio r must lie in (0, 1], got {self.top_k_ratio}")
        if self.gradient_bins < 1:
            raise MechanismError(f"gradient bins must be ≥ 1, got {self.gradient_bins}")


# ---------------------------------------------------------------------------------------------
# Image gradients

def patch_gradient(image: np.ndarray, h: int, w: int) -> np.ndarray:
    """Mean Sobel gradient magnitude per patch, ``(h, w)`` float32 (grey levels of [0, 1] per
    pixel, unnormalised Sobel weights), of an RGB image ``(3, S, S)`` in [0, 1].

    Raises:
        MechanismError: if ``S`` is not a multiple of the grid (no whole-pixel footprint).
    """
    _, rows, cols = image.shape
    if rows % h or cols % w:
        raise MechanismError(f"a {rows}×{cols} image does not split into a {h}×{w} patch grid")
    grey = np.tensordot(LUMA_601, image.astype(np.float32), axes=1)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = np.sqrt(gx * gx + gy * gy)
    return magnitude.reshape(h, rows // h, w, cols // w).mean(axis=(1, 3))


def image_patch_gradients(samples: list[Sample], size: int, h: int, w: int,
                          progress: bool = True) -> np.ndarray:
    """``patch_gradient`` of every sample read at the model input size, ``(n, h, w)`` float32."""
    return np.stack([patch_gradient(load_image(s.path, size), h, w)
                     for s in tqdm(samples, desc="H1 gradients", unit="img", disable=not progress)])


# ---------------------------------------------------------------------------------------------
# Result records

@dataclass(frozen=True)
class GradientDistribution:
    """Tail and non-tail patch gradients as histograms on shared bins and quantiles (fig3)."""
    bin_edges: tuple[float, ...]          # (B + 1,) bin edges, gradient units
    tail_counts: tuple[int, ...]          # (B,) tail patches per bin
    nontail_counts: tuple[int, ...]       # (B,) non-tail patches per bin
    quantile_levels: tuple[float, ...]    # (Q,) levels in [0, 1]
    tail_quantiles: tuple[float, ...]     # (Q,) tail gradient quantiles
    nontail_quantiles: tuple[float, ...]  # (Q,) non-tail gradient quantiles

    @classmethod
    def from_dict(cls, d: dict) -> "GradientDistribution":
        return cls(**{k: tuple(v) for k, v in d.items()})


@dataclass(frozen=True)
class H1Paired:
    """Baseline (λ = 0) vs candidate on the same images, with the analysis' tail size k."""
    baseline_checkpoint: str             # the baseline checkpoint's label
    baseline_tail_weight: float          # λ of the baseline
    tail_distance_mean: PairedStat       # cells
    gradient_ratio: PairedStat | None    # None when either model's ratio is undefined
    note: str                            # why ``gradient_ratio`` is None ("" otherwise)

    @classmethod
    def from_dict(cls, d: dict) -> "H1Paired":
        ratio = d["gradient_ratio"]
        return cls(d["baseline_checkpoint"], d["baseline_tail_weight"],
                   PairedStat.from_dict(d["tail_distance_mean"]),
                   None if ratio is None else PairedStat.from_dict(ratio), d["note"])


@dataclass(frozen=True)
class H1Result:
    """H1 numbers, figure data (fig2, fig3) and verdict.

    ``tail_counts_map[i][j]``: how often cell ``(i, j)`` was a tail patch over all images;
    ``tail_share_map`` = counts / (images · k), which sums to 1 (uniform: 1/N per cell).
    ``tail_distance_counts[t]``: tail patches at edge distance ``t``;
    ``uniform_distance_pmf[t]``: ``P(d = t)`` for a uniform cell.
    """
    context: AnalysisContext
    tail_distance_mean: Interval                    # cells, bootstrap over images
    tail_distance_std: float                        # population std over all tail patches, cells
    uniform_distance_mean: float                    # cells, exact
    ks_statistic: float                             # D
    ks_p: float
    ks_method: str
    gradient_method: str
    gradient_tail_mean: float                       # mean patch gradient of tail patches
    gradient_nontail_mean: float                    # mean patch gradient of the other patches
    gradient_ratio: Interval | None                 # tail / non-tail; None: non-tail mean is 0
    mw_p: float | None                              # None: every patch gradient is equal
    cliffs_delta: Interval                          # tail vs non-tail gradients
    gradient_note: str                              # why a gradient statistic is None
    tail_counts_map: tuple[tuple[int, ...], ...]    # (H, W)
    tail_share_map: tuple[tuple[float, ...], ...]   # (H, W)
    tail_distance_counts: tuple[int, ...]           # (T,) T = max edge distance + 1
    uniform_distance_pmf: tuple[float, ...]         # (T,)
    gradient_distribution: GradientDistribution
    paired: H1Paired | None
    verdict: Verdict
    verdict_reason: str

    def to_dict(self) -> dict:
        d = asdict(self)
        d["verdict"] = self.verdict.value
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "H1Result":
        ratio, paired = d["gradient_ratio"], d["paired"]
        return cls(
            context=AnalysisContext(**d["context"]),
            tail_distance_mean=Interval(**d["tail_distance_mean"]),
            tail_distance_std=d["tail_distance_std"],
            uniform_distance_mean=d["uniform_distance_mean"],
            ks_statistic=d["ks_statistic"], ks_p=d["ks_p"], ks_method=d["ks_method"],
            gradient_method=d["gradient_method"],
            gradient_tail_mean=d["gradient_tail_mean"],
            gradient_nontail_mean=d["gradient_nontail_mean"],
            gradient_ratio=None if ratio is None else Interval(**ratio),
            mw_p=d["mw_p"], cliffs_delta=Interval(**d["cliffs_delta"]),
            gradient_note=d["gradient_note"],
            tail_counts_map=tuple(tuple(r) for r in d["tail_counts_map"]),
            tail_share_map=tuple(tuple(r) for r in d["tail_share_map"]),
            tail_distance_counts=tuple(d["tail_distance_counts"]),
            uniform_distance_pmf=tuple(d["uniform_distance_pmf"]),
            gradient_distribution=GradientDistribution.from_dict(d["gradient_distribution"]),
            paired=None if paired is None else H1Paired.from_dict(paired),
            verdict=Verdict(d["verdict"]), verdict_reason=d["verdict_reason"])

    def _table_rows(self) -> list[tuple[str, str]]:
        mean = self.tail_distance_mean
        ci = "" if mean.low is None else f" (mean's 95% CI [{mean.low:.3f}, {mean.high:.3f}])"
        ratio = "—" if self.gradient_ratio is None else f"**{self.gradient_ratio.format('{:.3f}×')}**"
        return [
            ("Edge distance (tail), cells", f"{mean.estimate:.3f} ± {self.tail_distance_std:.3f}{ci}"),
            ("Edge distance (uniform), cells", f"{self.uniform_distance_mean:.3f}"),
            ("KS p-value (one-sample, exact discrete law)",
             f"{format_p(self.ks_p)} (D = {self.ks_statistic:.3f})"),
            ("Image gradient (tail)", f"{self.gradient_tail_mean:.4f}"),
            ("Image gradient (non-tail)", f"{self.gradient_nontail_mean:.4f}"),
            ("**Gradient ratio** (tail / non-tail)", ratio),
            ("Mann-Whitney p-value", "—" if self.mw_p is None else format_p(self.mw_p)),
            ("Cliff's δ (tail vs non-tail gradient)", self.cliffs_delta.format("{:.3f}")),
        ]

    def _paired_rows(self) -> list[tuple[str, str, str, str]]:
        p = self.paired
        rows = [("Edge distance (tail) mean, cells", *(i.format("{:.3f}") for i in (
            p.tail_distance_mean.baseline, p.tail_distance_mean.candidate,
            p.tail_distance_mean.difference)))]
        if p.gradient_ratio is None:
            rows.append(("Gradient ratio", "—", "—", p.note))
        else:
            rows.append(("Gradient ratio", *(i.format("{:.3f}") for i in (
                p.gradient_ratio.baseline, p.gradient_ratio.candidate,
                p.gradient_ratio.difference))))
        return rows

    def markdown(self) -> str:
        c = self.context
        interval = (f"95% percentile bootstrap over images, B = {c.n_boot}" if c.n_boot
                    else "no bootstrap intervals")
        parts = [markdown_table(["measurement", "value"], self._table_rows()), "",
                 f"**Verdict: {self.verdict.value}** — {self.verdict_reason}", ""]
        if self.paired is not None:
            lam = f"λ = {self.paired.baseline_tail_weight:g}"
            parts += [f"Paired with the baseline ({self.paired.baseline_checkpoint}) on the same "
                      "images with the same k:", "",
                      markdown_table(["measurement", f"baseline ({lam})", "candidate",
                                      "difference (candidate − baseline)"], self._paired_rows()), ""]
        notes = f" {self.gradient_note}" if self.gradient_note else ""
        parts.append(
            f"Context: checkpoint {c.checkpoint}; category {c.category}, split {c.split}, "
            f"{c.n_images} images; grid {c.grid_h}×{c.grid_w} (N = {c.n_patches}), tail k = {c.k} "
            f"per image (r = {c.top_k_ratio:g}); seed {c.seed}; {interval}. KS: {self.ks_method}. "
            f"Gradient: {self.gradient_method}.{notes}")
        return "\n".join(parts)

    def csv_rows(self) -> list[dict]:
        def row(measurement: str, value: Interval | float | str | None, detail: str = "") -> dict:
            if isinstance(value, Interval):
                return {"measurement": measurement, "estimate": value.estimate,
                        "ci_low": value.low, "ci_high": value.high, "detail": detail or value.note}
            return {"measurement": measurement, "estimate": value, "ci_low": None, "ci_high": None,
                    "detail": detail}

        rows = [row("edge_distance_tail_mean", self.tail_distance_mean, "cells"),
                row("edge_distance_tail_std", self.tail_distance_std, "cells, population std"),
                row("edge_distance_uniform_mean", self.uniform_distance_mean, "cells, exact"),
                row("ks_statistic", self.ks_statistic, "D = max |F_n − F|"),
                row("ks_p", self.ks_p, self.ks_method),
                row("gradient_tail_mean", self.gradient_tail_mean, self.gradient_method),
                row("gradient_nontail_mean", self.gradient_nontail_mean, "as gradient_tail_mean"),
                row("gradient_ratio", self.gradient_ratio, self.gradient_note),
                row("mann_whitney_p", self.mw_p, self.gradient_note),
                row("cliffs_delta", self.cliffs_delta)]
        if self.paired is not None:
            p = self.paired
            paired_stats = [("edge_distance_tail_mean", p.tail_distance_mean),
                      ("gradient_ratio", p.gradient_ratio)]
            for name, paired in paired_stats:
                if paired is None:
                    rows.append(row(f"paired_{name}", None, p.note))
                    continue
                for role in ("baseline", "candidate", "difference"):
                    rows.append(row(f"paired_{name}_{role}", getattr(paired, role)))
        rows.append(row("verdict", self.verdict.value, self.verdict_reason))
        return rows


# ---------------------------------------------------------------------------------------------
# Verdict

def verdict(ks_p: float, tail_distance_mean: float, uniform_distance_mean: float,
            mw_p: float | None, gradient_ratio: float | None,
            alpha: float = ALPHA) -> tuple[Verdict, str]:
    """SPEC §4 H1 verdict from the headline numbers (see the module docstring), with a
    one-line reason. ``mw_p``/``gradient_ratio`` ``None`` (undefined) mean no gradient effect."""
    near_edges = tail_distance_mean < uniform_distance_mean
    location = ks_p < alpha and near_edges
    gradient = (mw_p is not None and gradient_ratio is not None and mw_p < alpha
                and gradient_ratio >= RATIO_THRESHOLD)
    side = "nearer the edges" if near_edges else "not nearer the edges"
    loc_text = (f"tail {side} ({tail_distance_mean:.3f} vs uniform {uniform_distance_mean:.3f} "
                f"cells, KS p = {format_p(ks_p)})")
    ratio_text = "undefined" if gradient_ratio is None else f"{gradient_ratio:.2f}×"
    mw_text = "undefined" if mw_p is None else format_p(mw_p)
    grad_text = f"gradient ratio {ratio_text} (MW p = {mw_text})"
    holds = {True: "holds", False: "does not hold"}
    reason = (f"location effect {holds[location]}: {loc_text}; "
              f"gradient effect {holds[gradient]}: {grad_text}")
    if location and gradient:
        return Verdict.SUPPORTED, reason
    if location or gradient:
        return Verdict.PARTIAL, reason
    return Verdict.NOT_SUPPORTED, reason


# ---------------------------------------------------------------------------------------------
# Analysis

@dataclass(frozen=True)
class _TailSplit:
    """One model's tail selection on the analysed images and its per-image sufficient sums."""
    mask: np.ndarray              # (n, N) bool, True for tail patches
    distances: np.ndarray         # (n, k) int64 edge distances of the tail patches, cells
    gradient_tail: np.ndarray     # (n, k) float64 patch gradients of the tail
    gradient_nontail: np.ndarray  # (n, N − k) float64 patch gradients of the other patches

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


def _split_tail(nll: torch.Tensor, k: int, distance: np.ndarray, gradient: np.ndarray) -> _TailSplit:
    """Tail = top-k NLL patches of each image; ``nll (n, H, W)``, ``distance (N,)``,
    ``gradient (n, N)``.

    Raises:
        MechanismError: if an NLL is not finite (the tail would be undefined).
    """
    bad = int((~torch.isfinite(nll)).flatten(1).any(1).sum())
    if bad:
        raise MechanismError(f"the checkpoint gives non-finite patch NLLs on {bad} of "
                             f"{len(nll)} images: the tail is undefined")
    index = select_tail(nll, k, "topk").cpu().numpy()
    mask = np.zeros(gradient.shape, dtype=bool)
    np.put_along_axis(mask, index, True, axis=1)
    n = len(gradient)
    return _TailSplit(mask, distance[index], np.take_along_axis(gradient, index, axis=1),
                      gradient[~mask].reshape(n, -1))


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


def _intervals(cand: _TailSplit, base: _TailSplit | None, cfg: H1Config) -> dict[str, Interval]:
    """Bootstrap intervals over images (shared resamples) of the candidate's tail edge-distance
    mean, Cliff's δ and gradient ratio, and with ``base`` the baseline's values and the
    differences. A ratio whose denominator is zero on the full data is left out."""
    n, k = cand.distances.shape
    signs = cliffs_sign_matrix(cand.gradient_tail, cand.gradient_nontail)
    k_other = cand.gradient_nontail.shape[1]
    statistics = {"tail_distance_mean": cand.tail_distance_mean,
                  "cliffs_delta": lambda wt: resampled_cliffs_delta(signs, wt, k, k_other)}
    if cand.ratio_defined:
        statistics["gradient_ratio"] = cand.gradient_ratio
    if base is not None:
        statistics["baseline_tail_distance_mean"] = base.tail_distance_mean
        statistics["difference_tail_distance_mean"] = \
            lambda wt: cand.tail_distance_mean(wt) - base.tail_distance_mean(wt)
        if cand.ratio_defined and base.ratio_defined:
            statistics["baseline_gradient_ratio"] = base.gradient_ratio
            statistics["difference_gradient_ratio"] = \
                lambda wt: cand.gradient_ratio(wt) - base.gradient_ratio(wt)
    return bootstrap({name: _by_index(fn, n) for name, fn in statistics.items()}, n, cfg.n_boot,
                     cfg.seed)


def _paired(intervals: dict[str, Interval], baseline: Checkpoint) -> H1Paired:
    def pair(name: str) -> PairedStat | None:
        if f"difference_{name}" not in intervals:
            return None
        return PairedStat(intervals[f"baseline_{name}"], intervals[name], intervals[f"difference_{name}"])
    ratio = pair("gradient_ratio")
    note = "" if ratio is not None else \
        "gradient ratio undefined for a model: its non-tail patches have zero gradient"
    return H1Paired(checkpoint_label(baseline), baseline.loss.tail_weight,
                    pair("tail_distance_mean"), ratio, note)


def _gradient_notes(gradient: np.ndarray, cand: _TailSplit) -> str:
    notes = []
    if not cand.ratio_defined:
        notes.append("Gradient ratio undefined: the non-tail patches have zero gradient.")
    if np.ptp(gradient) == 0:
        notes.append("Mann-Whitney test undefined: every patch gradient is equal.")
    return " ".join(notes)


def run(detector: Detector, data_root: str | Path, category: str, cfg: H1Config = H1Config(),
        baseline: Detector | None = None, cache_dir: Path | None | str = "default",
        progress: bool = True) -> H1Result:
    """Run H1 on the training images of ``category``.

    The baseline's tail uses the analysis' k, and the analysed checkpoint's features when both
    share a backbone.

    Args:
        detector: the analysed checkpoint.
        baseline: a λ = 0 checkpoint with the same grid; adds the paired table.
        cache_dir: feature cache (``"default"``, a folder, or ``None`` for none).

    Raises:
        MechanismError: for missing data, k = N (no non-tail patches) or a baseline on
            another grid.
    """
    ckpt = detector.ckpt
    h, w, r, k = tail_setup(ckpt, cfg.top_k_ratio, "H1", baseline.ckpt if baseline is not None else None)
    n_patches = h * w
    samples = read_split(data_root, category, "train")[:cfg.max_images]
    n = len(samples)

    features = detector.features(samples, cache_dir, progress)
    gradient = image_patch_gradients(samples, detector.backbone.cfg.input_size, h, w,
                                     progress).reshape(n, -1).astype(np.float64)
    distance = edge_distance_grid(h, w).ravel()
    cand = _split_tail(detector.patch_nll(features, cfg.batch_size, progress), k, distance, gradient)
    base = None
    if baseline is not None:
        if baseline.ckpt.backbone != ckpt.backbone:
            features = baseline.features(samples, cache_dir, progress)
        base = _split_tail(baseline.patch_nll(features, cfg.batch_size, progress), k, distance,
                           gradient)

    tail_g, nontail_g = cand.gradient_tail.ravel(), cand.gradient_nontail.ravel()
    ks = edge_distance_ks(cand.distances.ravel(), h, w)
    uniform_mean = uniform_edge_distance_mean(h, w)
    pmf = uniform_edge_distance_pmf(h, w)
    mw_p = float(stats.mannwhitneyu(tail_g, nontail_g, alternative="two-sided").pvalue) \
        if np.ptp(gradient) > 0 else None
    intervals = _intervals(cand, base, cfg)
    ratio = intervals.get("gradient_ratio")
    decision, reason = verdict(ks.p_value, intervals["tail_distance_mean"].estimate, uniform_mean,
                               mw_p, None if ratio is None else ratio.estimate)
    counts = cand.mask.sum(axis=0).reshape(h, w)
    return H1Result(
        context=AnalysisContext(checkpoint_label(ckpt), category, "train", n, h, w, n_patches, k,
                                float(r), cfg.seed, cfg.n_boot),
        tail_distance_mean=intervals["tail_distance_mean"],
        tail_distance_std=float(cand.distances.std()),
        uniform_distance_mean=uniform_mean,
        ks_statistic=ks.statistic, ks_p=ks.p_value, ks_method=KS_METHOD,
        gradient_method=GRADIENT_METHOD,
        gradient_tail_mean=float(tail_g.mean()), gradient_nontail_mean=float(nontail_g.mean()),
        gradient_ratio=ratio, mw_p=mw_p, cliffs_delta=intervals["cliffs_delta"],
        gradient_note=_gradient_notes(gradient, cand),
        tail_counts_map=tuple(tuple(int(c) for c in row) for row in counts),
        tail_share_map=tuple(tuple(float(c) / (n * k) for c in row) for row in counts),
        tail_distance_counts=tuple(int(c) for c in np.bincount(cand.distances.ravel(),
                                                               minlength=len(pmf))),
        uniform_distance_pmf=tuple(float(p) for p in pmf),
        gradient_distribution=_gradient_distribution(tail_g, nontail_g, cfg.gradient_bins),
        paired=None if baseline is None else _paired(intervals, baseline.ckpt),
        verdict=decision, verdict_reason=reason)
