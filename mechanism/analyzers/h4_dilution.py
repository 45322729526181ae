"""H4 — top-k ratio dilution (SPEC §4), measured on a trained checkpoint's training images.

For each top-k ratio r, ``k = max(1, round(N·r))`` with N from the checkpoint:

* amplification (theoretical) = N / k;
* purity = mean over images of |selected k ∩ truly hard| / k, where the selection ranks the NLL
  "the loss would see in training" (the checkpoint on one seeded augmented view per image:
  photometric jitter and pixel noise, flips optional, see ``mechanism.data.augment``; or a
  ``selection`` checkpoint on the clean view) and the truly hard patches are the top
  ``k_ref = max(1, round(N·0.02))`` of the NLL averaged over M views (the clean view and M − 1
  seeded augmented views, mapped back to the original grid), or of a ``reference`` checkpoint's
  clean-view NLL. The augmented views used for selection and for the reference are distinct
  draws (view 0 for the selection, views 1..M−1 for the reference), so their noise is independent;
* oracle purity = min(1, k_ref/k) (perfect selection); chance purity = k_ref/N (random selection);
* effective concentration = purity × amplification;
* with a sweep folder: the measured Pixel AP and Image AUROC of the checkpoints trained at each
  ratio, mean ± std over seeds. Every ratio the sweep trained is analysed too.

Best ratio: the ratio with the highest measured mean Pixel AP when a sweep is given, else the
ratio with the highest effective concentration (ties: the smaller ratio).
Verdict: SUPPORTED if effective concentration falls monotonically above the best ratio
(non-increasing at every step and strictly lower at the largest ratio than at the best) AND the
measured Pixel AP is lower at 10% than at the best ratio, the best ratio lying below 10% (with a
best ratio of 10% or more, performance is not diluted at 10%). Without a sweep, or without a measured
10% run, the performance half cannot be checked: PARTIAL when the concentration half holds.
NOT SUPPORTED otherwise.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from mechanism.analyzers.context import (AnalysisContext, Verdict, check_common_settings,
                                         checkpoint_label)
from mechanism.data.augment import AugmentConfig, apply_views, draw_view, maps_to_original_grid
from mechanism.data.images import load_image
from mechanism.data.mvtec import Sample, read_split
from mechanism.eval.detector import Detector
from mechanism.errors import MechanismError
from mechanism.flow import patch_nll
from mechanism.train.loss import tail_k
from mechanism.stats.bootstrap import Interval, bootstrap
from mechanism.stats.purity import chance_purity, oracle_purity, topk_purity
from mechanism.sweep.results import MetricSummary, read_sweep_results, summarize_sweep
from mechanism.io.text import markdown_table

DEFAULT_RATIOS = (0.01, 0.02, 0.03, 0.05, 0.10, 0.20, 0.50, 1.0)
DILUTED_RATIO = 0.10           # SPEC: measured Pixel AP must be lower here than at the best ratio
SWEEP_PARAM = "tail_top_k_ratio"
SELECTION_VIEW = 0             # view number of the selection's augmented view (reference: 1..M−1)
BASIS_PIXEL_AP = "measured Pixel AP"
BASIS_EFFECTIVE = "effective concentration"
DEFAULT_IMAGES = 64            # H4 runs the backbone on M augmented views per image, which no cache can
                               # serve; 64 of the demo's 200 images cost 1.3 backbone passes instead of
                               # 4 and moved purity by ≤ 0.03, inside its 95% interval (brick, λ 0.7)
CPU_BACKBONE_CHUNK = 4         # images per backbone call on a CPU: Lite0 at 224 px runs ~2-3× faster
                               # per image in chunks of 4 than of 32 (measured on 2 threads)


@dataclass(frozen=True)
class H4Config:
    """Settings of the H4 analysis."""
    ratios: tuple[float, ...] = DEFAULT_RATIOS  # top-k ratios r analysed (a sweep's ratios are added)
    reference_ratio: float = 0.02               # truly hard share per image: k_ref = max(1, round(N·this))
    n_views: int = 4                            # M: views in the reference (clean + M−1 augmented)
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # strength of the augmented views
    seed: int = 0                               # seeds the augmented views and the bootstrap (≥ 0)
    n_boot: int = 1000                          # bootstrap resamples over images (0 = no intervals)
    batch_size: int = 32                        # images per backbone/flow batch
    max_images: int | None = DEFAULT_IMAGES     # use the first n training images (sorted order; None: all)

    def __post_init__(self):
        object.__setattr__(self, "ratios", tuple(float(r) for r in self.ratios))
        if isinstance(self.augment, dict):  # as stored in a result's JSON
            object.__setattr__(self, "augment", AugmentConfig(**self.augment))
        if not self.ratios or any(not 0.0 < r <= 1.0 for r in self.ratios):
            raise MechanismError(f"H4 ratios must be a non-empty list in (0, 1], got {list(self.ratios)}")
        if not 0.0 < self.reference_ratio <= 1.0:
            raise MechanismError(f"H4 reference ratio must lie in (0, 1], got {self.reference_ratio}")
        if self.n_views < 1:
            raise MechanismError(f"H4 needs at least one reference view, got {self.n_views}")
        if self.seed < 0:
            raise MechanismError(f"H4 seed must be ≥ 0 (it seeds the views), got {self.seed}")
        check_common_settings(self)


@dataclass(frozen=True)
class RatioRow:
    """The H4 numbers of one top-k ratio."""
    ratio: float                            # r
    k: int                                  # max(1, round(N·r))
    amplification: float                    # N / k (theoretical)
    purity: Interval                        # mean per-image purity, 95% bootstrap interval
    oracle_purity: float                    # min(1, k_ref / k)
    effective_concentration: Interval       # purity × amplification, same resamples
    pixel_ap: MetricSummary | None          # measured by the sweep at r (None: not measured)
    image_auroc: MetricSummary | None

    def to_dict(self) -> dict:
        return {"ratio": self.ratio, "k": self.k, "amplification": self.amplification,
                "purity": self.purity.to_dict(), "oracle_purity": self.oracle_purity,
                "effective_concentration": self.effective_concentration.to_dict(),
                "pixel_ap": None if self.pixel_ap is None else self.pixel_ap.to_dict(),
                "image_auroc": None if self.image_auroc is None else self.image_auroc.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "RatioRow":
        def summary(x):
            return None if x is None else MetricSummary(**x)
        return cls(d["ratio"], d["k"], d["amplification"], Interval(**d["purity"]),
                   d["oracle_purity"], Interval(**d["effective_concentration"]),
                   summary(d["pixel_ap"]), summary(d["image_auroc"]))


def _percent(r: float) -> str:
    return f"{100 * r:g}%"


@dataclass(frozen=True)
class H4Result:
    """Purity, amplification and effective concentration per top-k ratio, and the verdict."""
    context: AnalysisContext
    config: dict                    # the H4Config used, as plain types
    k_ref: int                      # truly hard patches per image
    chance_purity: float            # k_ref / N
    n_views: int | None             # M views in the reference (None: a reference checkpoint)
    selection_source: str           # what ranked the selected patches
    reference_source: str           # what defined the truly hard patches
    sweep: str | None               # sweep folder of the measured columns
    rows: tuple[RatioRow, ...]      # ascending ratios
    best_ratio: float
    best_basis: str                 # "measured Pixel AP" or "effective concentration"
    verdict: Verdict
    verdict_reason: str

    def to_dict(self) -> dict:
        return {"hypothesis": "H4", "context": self.context.to_dict(), "config": self.config,
                "k_ref": self.k_ref, "chance_purity": self.chance_purity, "n_views": self.n_views,
                "selection_source": self.selection_source, "reference_source": self.reference_source,
                "sweep": self.sweep, "rows": [r.to_dict() for r in self.rows],
                "best_ratio": self.best_ratio, "best_basis": self.best_basis,
                "verdict": self.verdict.value, "verdict_reason": self.verdict_reason}

    @classmethod
    def from_dict(cls, d: dict) -> "H4Result":
        return cls(AnalysisContext(**d["context"]), d["config"], d["k_ref"], d["chance_purity"],
                   d["n_views"], d["selection_source"], d["reference_source"], d["sweep"],
                   tuple(RatioRow.from_dict(r) for r in d["rows"]), d["best_ratio"],
                   d["best_basis"], Verdict(d["verdict"]), d["verdict_reason"])

    def markdown(self) -> str:
        """The study's H4 table (+ measured columns with a sweep), the verdict and the context."""
        header = ["Ratio", "k", "Amplification", "Purity [95% CI]", "Oracle purity",
                  "Effective conc. [95% CI]"]
        if self.sweep is not None:
            header += ["Pixel AP", "Image AUROC"]
        lines = []
        for row in self.rows:
            cells = [_percent(row.ratio), row.k, f"{row.amplification:.3g}×",
                     row.purity.format("{:.1%}"), f"{row.oracle_purity:.1%}",
                     row.effective_concentration.format("{:.3g}×")]
            if self.sweep is not None:
                cells += [m.format_percent() if m is not None else "not measured"
                          for m in (row.pixel_ap, row.image_auroc)]
            lines.append(cells)
        c = self.context
        measured = f"; measured columns: sweep {self.sweep}, mean ± std over seeds" if self.sweep else ""
        context = (f"N = {c.n_patches} patches ({c.grid_h}×{c.grid_w} grid); truly hard: "
                   f"k_ref = {self.k_ref} per image ({_percent(self.config['reference_ratio'])} of N); "
                   f"chance purity {self.chance_purity:.1%} (k_ref/N); selection: "
                   f"{self.selection_source}; reference: {self.reference_source}; best ratio "
                   f"{_percent(self.best_ratio)} by {self.best_basis}{measured}; {c.n_images} "
                   f"{c.split} images of {c.category}; seed {c.seed}; bootstrap B = {c.n_boot}; "
                   f"checkpoint {c.checkpoint} (its own r = {_percent(c.top_k_ratio)}, k = {c.k}).")
        return "\n".join([markdown_table(header, lines), "",
                          f"**Verdict: {self.verdict.value}** — {self.verdict_reason}", "", context])

    def csv_rows(self) -> list[dict]:
        out = []
        for row in self.rows:
            flat = {"ratio": row.ratio, "k": row.k, "amplification": row.amplification,
                    "purity": row.purity.estimate, "purity_low": row.purity.low,
                    "purity_high": row.purity.high, "oracle_purity": row.oracle_purity,
                    "chance_purity": self.chance_purity,
                    "effective_concentration": row.effective_concentration.estimate,
                    "effective_concentration_low": row.effective_concentration.low,
                    "effective_concentration_high": row.effective_concentration.high}
            for name, m in (("pixel_ap", row.pixel_ap), ("image_auroc", row.image_auroc)):
                flat.update({f"{name}_{key}": None if m is None else getattr(m, key)
                             for key in ("mean", "std", "n")})
            out.append(flat)
        return out


def best_ratio(ratios: Sequence[float], effective: Sequence[float],
               pixel_ap: Sequence[float | None] | None) -> tuple[float, str]:
    """The best ratio and its basis: highest measured mean Pixel AP if any ratio was measured,
    else highest effective concentration; ties go to the smaller ratio (ratios ascending)."""
    measured = [] if pixel_ap is None else [i for i, ap in enumerate(pixel_ap) if ap is not None]
    if measured:
        return ratios[max(measured, key=lambda i: pixel_ap[i])], BASIS_PIXEL_AP
    return ratios[int(np.argmax(effective))], BASIS_EFFECTIVE


def verdict(ratios: Sequence[float], effective: Sequence[float],
            pixel_ap: Sequence[float | None] | None) -> tuple[Verdict, str]:
    """The SPEC §4 H4 rule (module docstring) on ascending ``ratios``.

    Args:
        effective: effective concentration per ratio.
        pixel_ap: measured mean Pixel AP per ratio (``None`` entries: not measured), or ``None``
            when no sweep was given.
    """
    if list(ratios) != sorted(set(ratios)) or len(effective) != len(ratios) or \
            (pixel_ap is not None and len(pixel_ap) != len(ratios)):
        raise ValueError("ratios must be distinct and ascending, with one value per ratio")
    best, basis = best_ratio(ratios, effective, pixel_ap)
    b = list(ratios).index(best)

    def at(i: int) -> str:
        return f"{_percent(ratios[i])} ({effective[i]:.3g}×)"

    if b == len(ratios) - 1:
        return Verdict.NOT_SUPPORTED, (f"best ratio {_percent(best)} (by {basis}) is the largest "
                                       f"analysed: no larger ratio to show dilution")
    for j in range(b + 1, len(ratios)):
        if effective[j] > effective[j - 1]:
            return Verdict.NOT_SUPPORTED, (f"effective concentration rises from {at(j - 1)} to "
                                           f"{at(j)}, above the best ratio {_percent(best)} (by {basis})")
    if not effective[-1] < effective[b]:
        return Verdict.NOT_SUPPORTED, (f"effective concentration does not fall above the best ratio "
                                       f"{_percent(best)} (by {basis}): {at(b)} and {at(-1)}")
    falls = (f"effective concentration falls monotonically above the best ratio {_percent(best)} "
             f"(by {basis}): {effective[b]:.3g}× → {at(-1)}")
    if pixel_ap is None:
        return Verdict.PARTIAL, f"{falls}; no sweep: performance not measured"
    diluted = [i for i, r in enumerate(ratios)
               if math.isclose(r, DILUTED_RATIO) and pixel_ap[i] is not None]
    if not diluted:
        return Verdict.PARTIAL, f"{falls}; Pixel AP at {_percent(DILUTED_RATIO)} not measured by the sweep"
    ap_best, ap_diluted = pixel_ap[b], pixel_ap[diluted[0]]
    if best > DILUTED_RATIO or math.isclose(best, DILUTED_RATIO):
        return Verdict.NOT_SUPPORTED, (f"{falls}; but measured Pixel AP peaks at {_percent(best)} "
                                       f"({ap_best:.2%}), not below {_percent(DILUTED_RATIO)}: no dilution at {_percent(DILUTED_RATIO)} "
                                       f"to measure")
    if ap_diluted < ap_best:
        return Verdict.SUPPORTED, (f"{falls}; Pixel AP {ap_diluted:.2%} at {_percent(DILUTED_RATIO)} "
                                   f"< {ap_best:.2%} at {_percent(best)}")
    return Verdict.NOT_SUPPORTED, (f"{falls}; but Pixel AP at {_percent(DILUTED_RATIO)} "
                                   f"({ap_diluted:.2%}) is not lower than at {_percent(best)} "
                                   f"({ap_best:.2%})")


def _backbone_features(detector: Detector, images: torch.Tensor) -> torch.Tensor:
    """``(B, 3, S, S)`` → ``(B, D, H, W)``, in chunks of ``CPU_BACKBONE_CHUNK`` on a CPU."""
    chunk = CPU_BACKBONE_CHUNK if detector.device.type == "cpu" else len(images)
    return torch.cat([detector.backbone(images[i:i + chunk]) for i in range(0, len(images), chunk)])


def augmented_nll(detector: Detector, samples: list[Sample], views: Sequence[int],
                  cfg: H4Config, progress: bool = True) -> dict[int, torch.Tensor]:
    """Per-patch NLL ``(n, H, W)`` float32 (nats/dim, CPU) of each augmented view number in
    ``views``, mapped back to the original grid. Image i's view v is
    ``draw_view(cfg.augment, cfg.seed, v, i)``; the backbone runs on the views (not cached)."""
    h, w, _ = detector.ckpt.grid
    size = detector.backbone.cfg.input_size
    out = {v: torch.empty((len(samples), h, w)) for v in views}
    with torch.inference_mode():
        for start in tqdm(range(0, len(samples), cfg.batch_size), desc="H4 augmented views",
                          disable=not progress):
            batch = samples[start:start + cfg.batch_size]
            images = torch.from_numpy(np.stack([load_image(s.path, size) for s in batch]))
            for v in views:
                drawn = [draw_view(cfg.augment, cfg.seed, v, start + i) for i in range(len(batch))]
                x = apply_views(images, drawn).to(detector.device)
                nll = patch_nll(detector.flow(_backbone_features(detector, x))).cpu()
                out[v][start:start + len(batch)] = maps_to_original_grid(nll, drawn)
    return out


def _clean_nll(detector: Detector, samples: list[Sample], cfg: H4Config,
               cache_dir: Path | None | str, progress: bool) -> torch.Tensor:
    """``(n, H, W)`` per-patch NLL of the clean images, features from the cache."""
    return detector.patch_nll(detector.features(samples, cache_dir, progress), cfg.batch_size, progress)


def _flat_finite(nll: torch.Tensor, what: str) -> np.ndarray:
    """``(n, H, W)`` → ``(n, N)`` numpy; non-finite NLL is an error."""
    flat = nll.flatten(1).numpy()
    if not np.all(np.isfinite(flat)):
        raise MechanismError(f"{what} gives non-finite NLL on {int((~np.isfinite(flat)).sum())} patches")
    return flat


def _measured(sweep: str | Path | None, category: str) -> dict[float, dict[str, MetricSummary]] | None:
    if sweep is None:
        return None
    measured = summarize_sweep(read_sweep_results(sweep), SWEEP_PARAM, category)
    bad = [r for r in measured if not 0.0 < r <= 1.0]
    if bad:
        raise MechanismError(f"sweep {sweep} lists top-k ratio {bad[0]:g} outside (0, 1]")
    return measured


def _match(ratio: float, measured: dict[float, dict[str, MetricSummary]] | None) -> dict | None:
    if measured is None:
        return None
    return next((m for r, m in measured.items() if math.isclose(r, ratio)), None)


def _ratio_rows(selection_nll: np.ndarray, reference_nll: np.ndarray, ratios: list[float],
                k_ref: int, measured: dict[float, dict[str, MetricSummary]] | None,
                cfg: H4Config) -> list[RatioRow]:
    """Purity and effective concentration (bootstrap over images, shared resamples) per ratio,
    from ``(n, N)`` selection and reference NLL."""
    n_images, n_patches = selection_nll.shape
    ks = [tail_k(n_patches, r) for r in ratios]
    statistics = {}
    for i, k in enumerate(ks):
        purity = topk_purity(selection_nll, reference_nll, k, k_ref)   # (n,) per image
        statistics[f"purity{i}"] = lambda idx, p=purity: float(p[idx].mean())
        statistics[f"effective{i}"] = lambda idx, p=purity, a=n_patches / k: float(p[idx].mean()) * a
    intervals = bootstrap(statistics, n_images, cfg.n_boot, cfg.seed)
    rows = []
    for i, (r, k) in enumerate(zip(ratios, ks)):
        perf = _match(r, measured) or {}
        rows.append(RatioRow(r, k, n_patches / k, intervals[f"purity{i}"], oracle_purity(k, k_ref),
                             intervals[f"effective{i}"], perf.get("pixel_ap"), perf.get("image_auroc")))
    return rows


def run(detector: Detector, data_root: str | Path, category: str, cfg: H4Config,
        selection: Detector | None = None, reference: Detector | None = None,
        sweep: str | Path | None = None, cache_dir: Path | None | str = "default",
        progress: bool = True) -> H4Result:
    """Measure top-k ratio dilution on ``category``'s training images.

    Args:
        detector: the analysed checkpoint.
        selection: rank the selection by this checkpoint's clean-view NLL instead of the
            analysed checkpoint's augmented view.
        reference: truly hard patches from this checkpoint's clean-view NLL instead of the
            analysed checkpoint's NLL averaged over ``cfg.n_views`` views.
        sweep: a sweep folder whose ``results.csv`` gives the measured Pixel AP / Image AUROC.

    Raises:
        MechanismError: unreadable data or sweep, a selection/reference checkpoint on another
            grid, or non-finite NLL.
    """
    h, w, _ = detector.ckpt.grid
    n_patches = detector.ckpt.n_patches
    for role, other in (("selection", selection), ("reference", reference)):
        if other is not None and other.ckpt.grid != detector.ckpt.grid:
            raise MechanismError(f"{role} checkpoint has grid {other.ckpt.grid} (H, W, D), the "
                                 f"analysed one {detector.ckpt.grid}")
    measured = _measured(sweep, category)
    ratios = list(cfg.ratios) + [r for r in (measured or {})
                                 if not any(math.isclose(r, c) for c in cfg.ratios)]
    ratios = sorted(set(ratios))
    samples = read_split(data_root, category, "train")[:cfg.max_images]

    views = ([SELECTION_VIEW] if selection is None else []) + \
        (list(range(1, cfg.n_views)) if reference is None else [])
    augmented = augmented_nll(detector, samples, views, cfg, progress) if views else {}
    if selection is None:
        selection_nll = _flat_finite(augmented[SELECTION_VIEW], "the checkpoint's augmented view")
        selection_source = (f"the checkpoint on one augmented view per image ({cfg.augment.describe()}; "
                            f"seed {cfg.seed}, view {SELECTION_VIEW})")
    else:
        selection_nll = _flat_finite(_clean_nll(selection, samples, cfg, cache_dir, progress),
                                     "the selection checkpoint")
        selection_source = f"checkpoint {checkpoint_label(selection.ckpt)} on the clean view"
    if reference is None:
        clean = _clean_nll(detector, samples, cfg, cache_dir, progress)
        mean_nll = torch.stack([clean, *(augmented[v] for v in range(1, cfg.n_views))]).mean(dim=0)
        reference_nll = _flat_finite(mean_nll, "the checkpoint")
        reference_source = (f"the checkpoint's NLL averaged over M = {cfg.n_views} views (clean + "
                            f"{cfg.n_views - 1} augmented, seed {cfg.seed}, views 1–{cfg.n_views - 1})"
                            if cfg.n_views > 1 else "the checkpoint's clean-view NLL (M = 1)")
    else:
        reference_nll = _flat_finite(_clean_nll(reference, samples, cfg, cache_dir, progress),
                                     "the reference checkpoint")
        reference_source = f"checkpoint {checkpoint_label(reference.ckpt)} on the clean view"

    k_ref = tail_k(n_patches, cfg.reference_ratio)
    rows = _ratio_rows(selection_nll, reference_nll, ratios, k_ref, measured, cfg)
    effective = [row.effective_concentration.estimate for row in rows]
    pixel_ap = None if measured is None else \
        [None if row.pixel_ap is None else row.pixel_ap.mean for row in rows]
    best, basis = best_ratio(ratios, effective, pixel_ap)
    decision, reason = verdict(ratios, effective, pixel_ap)
    context = AnalysisContext(
        checkpoint=checkpoint_label(detector.ckpt), category=category, split="train",
        n_images=len(samples), grid_h=h, grid_w=w, n_patches=n_patches,
        k=tail_k(n_patches, detector.ckpt.loss.top_k_ratio),
        top_k_ratio=detector.ckpt.loss.top_k_ratio, seed=cfg.seed, n_boot=cfg.n_boot)
    return H4Result(context, {**asdict(cfg), "ratios": list(cfg.ratios)}, k_ref,
                    chance_purity(k_ref, n_patches), cfg.n_views if reference is None else None,
                    selection_source, reference_source, None if sweep is None else str(sweep),
                    tuple(rows), best, basis, decision, reason)
