"""H7 — latent calibration (SPEC §4 H7): is the flow's latent z standard normal on test images?

Every value of ``z = flow(features).z`` ``(n, D, H, W)`` of the analysed test images (all, or
``good`` only) is pooled:

* z mean and population std; QQ correlation (Pearson r of the percentiles 1..99 against
  ``norm.ppf``); tail calibration error (mean |empirical − theoretical| at the percentiles
  1, 2, 5, 95, 98, 99); the quantile table (``mechanism.stats.calibration``);
* per channel: KS test against N(0, 1) on all values, Shapiro-Wilk on one seeded subsample of
  ≤ ``max_shapiro`` patch positions (mean p-values and the share of channels with p < α).

Point estimates are exact (computed on the raw values). Their 95% intervals are percentile
bootstraps over images; a resample's percentiles come from per-image histograms on shared
equal-count bins (``PooledHistograms``; ``tests/test_stats_calibration.py`` bounds the error
against exact percentiles of the resampled values), its moments from per-image sums.
KS and Shapiro p-values treat the patch values as independent; neighbouring patches are
correlated, so they overstate the evidence against normality.

Verdict (``verdict``): SUPPORTED if QQ r ≥ 0.995 and tail error ≤ 0.10; PARTIAL if QQ r ≥ 0.98;
else NOT SUPPORTED. With a baseline (λ = 0) checkpoint the same numbers are computed for it on
the same images and paired (same resamples); tail training moves z closer to N(0, 1) only if
the 95% interval of the tail-error difference (candidate − baseline) lies entirely below 0
(``tail_training_closer``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from mechanism.analyzers.context import (ALPHA, AnalysisContext, Verdict, check_common_settings,
                                         checkpoint_label)
from mechanism.stats.bootstrap import PairedStat
from mechanism.data.mvtec import Sample, read_split
from mechanism.eval.detector import Detector
from mechanism.errors import MechanismError
from mechanism.train.loss import tail_k
from mechanism.stats.bootstrap import Interval, Statistic, bootstrap
from mechanism.stats.calibration import (KS_METHOD, QQ_PERCENTILES, SHAPIRO_METHOD,
                                         TABLE_PERCENTILES, TAIL_PERCENTILES, PooledHistograms,
                                         PooledMoments, QuantileRow, channel_normality,
                                         normal_quantiles, qq_correlation_of_percentiles,
                                         quantile_table, tail_error_of_percentiles)
from mechanism.io.text import format_p, markdown_table

QQ_SUPPORTED = 0.995      # QQ r a SUPPORTED verdict needs (SPEC §4 H7)
TAIL_SUPPORTED = 0.10     # largest tail calibration error a SUPPORTED verdict allows
QQ_PARTIAL = 0.98         # QQ r a PARTIAL verdict needs
SPLITS = {"all": "test", "good": "test/good"}   # cfg.split → context split
CLOSER_RULE = ("yes only if the 95% bootstrap interval of the tail-calibration-error difference "
               "(candidate − baseline, same image resamples) lies entirely below 0")
_STATS = ("z_mean", "z_std", "qq_correlation", "tail_error")
_PAIRED = ("qq_correlation", "tail_error", "z_std")


@dataclass(frozen=True)
class H7Config:
    """Settings of the H7 analysis."""
    split: str = "all"                 # "all" test images or "good" ones only
    seed: int = 0                      # seeds the image subset, Shapiro subsample and bootstrap
    n_boot: int = 1000                 # bootstrap resamples for 95% intervals (0 = none)
    batch_size: int = 32               # images per flow batch
    max_images: int | None = None      # a seeded subset of n test images (all defect types)
    max_shapiro: int = 5000            # largest Shapiro-Wilk subsample per channel
    resample_bins: int = 4000          # equal-count bins of the per-image histograms

    def __post_init__(self):
        if self.split not in SPLITS:
            raise MechanismError(f"H7 split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        if self.seed < 0:
            raise MechanismError(f"H7 seed must be ≥ 0, got {self.seed}")
        check_common_settings(self)
        if self.max_shapiro < 3:
            raise MechanismError(f"the Shapiro-Wilk subsample needs ≥ 3 values, got "
                                 f"{self.max_shapiro}")
        if self.resample_bins < 10:
            raise MechanismError(f"resample bins must be ≥ 10, got {self.resample_bins}")


# ---------------------------------------------------------------------------------------------
# Result records

@dataclass(frozen=True)
class LatentCalibration:
    """One model's z calibration on the analysed images (z is dimensionless)."""
    n_values: int                              # all z values: images · D · H · W
    n_channels: int                            # D
    z_mean: Interval
    z_std: Interval                            # population std
    qq_correlation: Interval
    tail_error: Interval                       # mean |empirical − theoretical| at TAIL_PERCENTILES
    empirical_percentiles: tuple[float, ...]   # (99,) exact percentiles 1..99 of all z
    quantiles: tuple[QuantileRow, ...]         # at TAIL_PERCENTILES (1, 2, 5, 95, 98, 99)
    mean_ks_p: float                           # mean over channels of the KS p-value
    mean_shapiro_p: float                      # mean over channels of the Shapiro-Wilk p-value
    ks_reject_share: float                     # share of channels with KS p < α
    shapiro_reject_share: float                # share of channels with Shapiro p < α
    shapiro_n: int                             # Shapiro-Wilk subsample per channel
    channel_ks_p: tuple[float, ...]            # (D,)
    channel_shapiro_p: tuple[float, ...]       # (D,)
    channel_mean: tuple[float, ...]            # (D,)
    channel_std: tuple[float, ...]             # (D,) population std

    @property
    def percentile_errors(self) -> tuple[float, ...]:
        """(99,) empirical − theoretical at the percentiles 1..99 (signed; fig4)."""
        theory = normal_quantiles(QQ_PERCENTILES)
        return tuple(float(e - t) for e, t in zip(self.empirical_percentiles, theory))

    def quantile(self, percentile: float) -> QuantileRow:
        return next(q for q in self.quantiles if q.percentile == percentile)

    def to_dict(self) -> dict:
        return {**asdict(self), "percentile_errors": list(self.percentile_errors)}

    @classmethod
    def from_dict(cls, d: dict) -> "LatentCalibration":
        d = {k: v for k, v in d.items() if k != "percentile_errors"}
        intervals = {k: Interval(**d[k]) for k in _STATS}
        tuples = {k: tuple(d[k]) for k in ("empirical_percentiles", "channel_ks_p",
                                          "channel_shapiro_p", "channel_mean", "channel_std")}
        return cls(**{**d, **intervals, **tuples,
                      "quantiles": tuple(QuantileRow(**q) for q in d["quantiles"])})


@dataclass(frozen=True)
class H7Paired:
    """Baseline (λ = 0) vs candidate on the same images and bootstrap resamples."""
    baseline_checkpoint: str        # the baseline checkpoint's label
    baseline_tail_weight: float     # λ of the baseline
    qq_correlation: PairedStat
    tail_error: PairedStat
    z_std: PairedStat
    closer: bool | None             # tail training moves z closer to N(0, 1)? None: no interval
    closer_reason: str              # the answer with its evidence

    @classmethod
    def from_dict(cls, d: dict) -> "H7Paired":
        return cls(d["baseline_checkpoint"], d["baseline_tail_weight"],
                   *(PairedStat.from_dict(d[k]) for k in _PAIRED), d["closer"], d["closer_reason"])


@dataclass(frozen=True)
class H7Result:
    """H7 numbers, figure data (fig4 QQ plot + quantile errors, fig5 per-channel normality)
    and verdict. ``theoretical_percentiles[i]`` = Φ⁻¹(p/100) for ``percentile_levels[i]``."""
    context: AnalysisContext
    config: dict                                 # the H7Config used
    percentile_levels: tuple[int, ...]           # (99,) 1..99
    theoretical_percentiles: tuple[float, ...]   # (99,)
    candidate: LatentCalibration
    baseline: LatentCalibration | None
    paired: H7Paired | None
    method: str                                  # how tests and intervals were computed
    verdict: Verdict
    verdict_reason: str

    def to_dict(self) -> dict:
        return {"hypothesis": "H7", "context": self.context.to_dict(), "config": self.config,
                "percentile_levels": list(self.percentile_levels),
                "theoretical_percentiles": list(self.theoretical_percentiles),
                "candidate": self.candidate.to_dict(),
                "baseline": None if self.baseline is None else self.baseline.to_dict(),
                "paired": None if self.paired is None else asdict(self.paired),
                "method": self.method, "verdict": self.verdict.value,
                "verdict_reason": self.verdict_reason}

    @classmethod
    def from_dict(cls, d: dict) -> "H7Result":
        return cls(
            context=AnalysisContext(**d["context"]), config=d["config"],
            percentile_levels=tuple(d["percentile_levels"]),
            theoretical_percentiles=tuple(d["theoretical_percentiles"]),
            candidate=LatentCalibration.from_dict(d["candidate"]),
            baseline=None if d["baseline"] is None else LatentCalibration.from_dict(d["baseline"]),
            paired=None if d["paired"] is None else H7Paired.from_dict(d["paired"]),
            method=d["method"], verdict=Verdict(d["verdict"]), verdict_reason=d["verdict_reason"])

    def _table_rows(self) -> list[tuple[str, str, str]]:
        c, d = self.candidate, self.candidate.n_channels
        return [
            ("z mean", c.z_mean.format("{:.4f}"), "0"),
            ("z std", c.z_std.format("{:.4f}"), "1"),
            ("**QQ correlation**", f"**{c.qq_correlation.format('{:.4f}')}**", "1"),
            ("Mean KS p-value", format_p(c.mean_ks_p), "-"),
            ("Mean Shapiro-Wilk p-value", format_p(c.mean_shapiro_p), "-"),
            (f"Channels with KS p < {ALPHA:g}",
             f"{round(c.ks_reject_share * d)} of {d} ({c.ks_reject_share:.0%})", "-"),
            (f"Channels with Shapiro-Wilk p < {ALPHA:g}",
             f"{round(c.shapiro_reject_share * d)} of {d} ({c.shapiro_reject_share:.0%})", "-"),
            ("Tail calibration error", c.tail_error.format("{:.4f}"), "0"),
        ]

    def _paired_rows(self) -> list[tuple[str, str, str, str]]:
        names = {"qq_correlation": "QQ correlation", "tail_error": "Tail calibration error",
                 "z_std": "z std"}
        return [(label, *(getattr(getattr(self.paired, key), role).format(fmt)
                          for role, fmt in (("baseline", "{:.4f}"), ("candidate", "{:.4f}"),
                                            ("difference", "{:.4g}"))))
                for key, label in names.items()]

    def markdown(self) -> str:
        c = self.context
        quantiles = [(f"{q.percentile:g}%", f"{q.empirical:.3f}", f"{q.theoretical:.3f}",
                      f"{q.error:.3f}") for q in map(self.candidate.quantile, TABLE_PERCENTILES)]
        parts = [markdown_table(["measurement", "value", "ideal"], self._table_rows()), "",
                 "Quantile comparison:", "",
                 markdown_table(["Percentile", "Empirical", "Theoretical", "Error"], quantiles), ""]
        if self.paired is not None:
            p = self.paired
            answer = {True: "yes", False: "no", None: "undetermined"}[p.closer]
            parts += [f"Paired with the baseline ({p.baseline_checkpoint}) on the same images:", "",
                      markdown_table(["measurement", f"baseline (λ = {p.baseline_tail_weight:g})",
                                      "candidate", "difference (candidate − baseline)"],
                                     self._paired_rows()), "",
                      f"Does tail training move z closer to N(0, 1)? **{answer}** — "
                      f"{p.closer_reason} (rule: {CLOSER_RULE}).", ""]
        interval = (f"95% percentile bootstrap over images, B = {c.n_boot}" if c.n_boot
                    else "no bootstrap intervals")
        cand = self.candidate
        parts += [f"**Verdict: {self.verdict.value}** — {self.verdict_reason}", "",
                  f"Context: checkpoint {c.checkpoint}; category {c.category}, split {c.split}, "
                  f"{c.n_images} images; grid {c.grid_h}×{c.grid_w} (N = {c.n_patches}), "
                  f"{cand.n_channels} channels, {cand.n_values:,} z values; the checkpoint's tail "
                  f"k = {c.k} per image (r = {c.top_k_ratio:g}); seed {c.seed}; {interval}. "
                  f"{self.method}"]
        return "\n".join(parts)

    def csv_rows(self) -> list[dict]:
        def row(measurement: str, value, detail: str = "") -> dict:
            if isinstance(value, Interval):
                return {"measurement": measurement, "estimate": value.estimate,
                        "ci_low": value.low, "ci_high": value.high, "detail": detail or value.note}
            return {"measurement": measurement, "estimate": value, "ci_low": None, "ci_high": None,
                    "detail": detail}

        def model_rows(prefix: str, m: LatentCalibration) -> list[dict]:
            rows = [row(f"{prefix}{name}", getattr(m, name)) for name in _STATS]
            rows += [row(f"{prefix}{name}", getattr(m, name)) for name in
                     ("mean_ks_p", "mean_shapiro_p", "ks_reject_share", "shapiro_reject_share",
                      "n_values", "n_channels", "shapiro_n")]
            for q in m.quantiles:
                rows += [row(f"{prefix}quantile_{q.percentile:g}_{part}", getattr(q, part))
                         for part in ("empirical", "theoretical", "error")]
            return rows

        rows = model_rows("", self.candidate)
        if self.baseline is not None:
            rows += model_rows("baseline_", self.baseline)
        if self.paired is not None:
            rows += [row(f"difference_{name}", getattr(self.paired, name).difference,
                         "candidate − baseline") for name in _PAIRED]
            answer = {True: "yes", False: "no", None: "undetermined"}[self.paired.closer]
            rows.append(row("tail_training_closer", answer, self.paired.closer_reason))
        rows.append(row("verdict", self.verdict.value, self.verdict_reason))
        return rows


# ---------------------------------------------------------------------------------------------
# Rules

def verdict(qq_correlation: float, tail_error: float) -> tuple[Verdict, str]:
    """SPEC §4 H7 rule on the candidate's (finite) QQ r and tail error, with a one-line reason."""
    qq = f"QQ r = {qq_correlation:.4f}"
    tail = f"tail error {tail_error:.3f}"
    if qq_correlation >= QQ_SUPPORTED and tail_error <= TAIL_SUPPORTED:
        return Verdict.SUPPORTED, f"{qq} ≥ {QQ_SUPPORTED} and {tail} ≤ {TAIL_SUPPORTED:.2f}"
    if qq_correlation >= QQ_SUPPORTED:
        return Verdict.PARTIAL, f"{qq} ≥ {QQ_SUPPORTED} but {tail} > {TAIL_SUPPORTED:.2f}"
    if qq_correlation >= QQ_PARTIAL:
        return Verdict.PARTIAL, f"{qq} ≥ {QQ_PARTIAL} but < {QQ_SUPPORTED} ({tail})"
    return Verdict.NOT_SUPPORTED, f"{qq} < {QQ_PARTIAL} ({tail})"


def tail_training_closer(difference: Interval) -> tuple[bool | None, str]:
    """Does tail training move z closer to N(0, 1)? ``difference`` is the tail-error
    difference candidate − baseline; ``CLOSER_RULE`` decides. ``None`` when it has no interval."""
    text = f"tail-error difference (candidate − baseline) {difference.format('{:.4f}')}"
    if difference.low is None or difference.high is None:
        why = difference.note or "no interval"
        return None, f"{text} has no bootstrap interval ({why})"
    if difference.high < 0:
        return True, f"{text} lies below 0"
    if difference.low > 0:
        return False, f"{text} lies above 0: tail training moves the tails away from N(0, 1)"
    return False, f"{text} includes 0"


# ---------------------------------------------------------------------------------------------
# Analysis

def analysed_samples(data_root: str | Path, category: str, cfg: H7Config) -> list[Sample]:
    """The analysed test images: all or ``good`` ones, then (``max_images``) a seeded subset
    ``default_rng(seed).choice`` kept in the reader's (defect, name) order."""
    samples = read_split(data_root, category, "test")
    if cfg.split == "good":
        samples = [s for s in samples if s.defect == "good"]
        if not samples:
            raise MechanismError(f"category {category!r} has no test/good images")
    if cfg.max_images is not None and cfg.max_images < len(samples):
        keep = np.random.default_rng(cfg.seed).choice(len(samples), cfg.max_images, replace=False)
        samples = [samples[i] for i in np.sort(keep)]
    return samples


@torch.inference_mode()
def latents(detector: Detector, features: torch.Tensor, batch_size: int,
            progress: bool = True) -> np.ndarray:
    """The flow's ``z (n, D, H, W)`` float32 of features ``(n, D, H, W)``.

    Raises:
        MechanismError: if the flow gives non-finite z.
    """
    out = []
    for start in tqdm(range(0, len(features), batch_size), desc="H7 latents", unit="batch",
                      disable=not progress):
        out.append(detector.flow(features[start:start + batch_size].to(detector.device)).z
                   .float().cpu().numpy())
    z = np.concatenate(out)
    bad = int((~np.isfinite(z)).sum())
    if bad:
        raise MechanismError(f"the flow gives non-finite z for {bad} of {z.size} values")
    return z


class _ResampledPercentiles:
    """Percentiles 1..99 of one model's resampled pool, computed once per resample (every
    statistic of a resample receives the same image indices)."""

    def __init__(self, histograms: PooledHistograms, n_images: int):
        self.histograms, self.n_images = histograms, n_images
        self._idx: np.ndarray | None = None
        self._percentiles = np.empty(0)

    def __call__(self, idx: np.ndarray) -> np.ndarray:
        if self._idx is None or not np.array_equal(idx, self._idx):
            weights = np.bincount(idx, minlength=self.n_images).astype(np.float64)
            self._idx = idx.copy()
            self._percentiles = self.histograms.percentiles(weights, QQ_PERCENTILES)
        return self._percentiles


@dataclass(frozen=True)
class _Latents:
    """One model's z with its exact statistics and resampling functions."""
    z: np.ndarray                       # (n, D, H, W) float32
    exact: dict[str, float]             # _STATS → exact value on all z
    percentiles: np.ndarray             # (99,) exact percentiles 1..99

    @classmethod
    def from_z(cls, z: np.ndarray) -> "_Latents":
        flat = z.reshape(-1)
        percentiles = np.percentile(flat, QQ_PERCENTILES).astype(np.float64)
        qq = qq_correlation_of_percentiles(percentiles)
        if not np.isfinite(qq):
            raise MechanismError("QQ correlation undefined: the z percentiles 1..99 are all equal")
        exact = {"z_mean": float(flat.mean(dtype=np.float64)),
                 "z_std": float(flat.std(dtype=np.float64)),
                 "qq_correlation": qq, "tail_error": tail_error_of_percentiles(percentiles)}
        return cls(z, exact, percentiles)

    def statistics(self, n_bins: int) -> dict[str, Statistic]:
        """_STATS → function of resampled image indices (for ``bootstrap``)."""
        per_image = self.z.reshape(len(self.z), -1)
        moments = PooledMoments.from_values(per_image)
        resampled = _ResampledPercentiles(PooledHistograms.from_values(per_image, n_bins), len(self.z))

        def weights(idx: np.ndarray) -> np.ndarray:
            return np.bincount(idx, minlength=len(self.z)).astype(np.float64)

        return {"z_mean": lambda idx: moments.mean(weights(idx)),
                "z_std": lambda idx: moments.std(weights(idx)),
                "qq_correlation": lambda idx: qq_correlation_of_percentiles(resampled(idx)),
                "tail_error": lambda idx: tail_error_of_percentiles(resampled(idx))}

    def calibration(self, intervals: dict[str, Interval], cfg: H7Config) -> LatentCalibration:
        """The record, with ``intervals`` (keyed by _STATS) and the per-channel tests."""
        d = self.z.shape[1]
        normality = channel_normality(self.z.transpose(0, 2, 3, 1).reshape(-1, d), cfg.seed,
                                      cfg.max_shapiro)
        table = quantile_table(self.z, TAIL_PERCENTILES)

        def floats(a: np.ndarray) -> tuple[float, ...]:
            return tuple(float(x) for x in a)

        return LatentCalibration(
            n_values=int(self.z.size), n_channels=d, **intervals,
            empirical_percentiles=floats(self.percentiles), quantiles=tuple(table),
            mean_ks_p=float(normality.ks_p.mean()), mean_shapiro_p=float(normality.shapiro_p.mean()),
            ks_reject_share=normality.reject_share(normality.ks_p, ALPHA),
            shapiro_reject_share=normality.reject_share(normality.shapiro_p, ALPHA),
            shapiro_n=normality.shapiro_n, channel_ks_p=floats(normality.ks_p),
            channel_shapiro_p=floats(normality.shapiro_p), channel_mean=floats(normality.mean),
            channel_std=floats(normality.std))


def _intervals(cand: _Latents, base: _Latents | None, cfg: H7Config) -> dict[str, Interval]:
    """Intervals over shared image resamples of every statistic (``candidate_*``, ``baseline_*``,
    ``difference_*``); the estimates are replaced by the exact values on all z."""
    exact = {f"candidate_{k}": v for k, v in cand.exact.items()}
    if base is not None:
        exact.update({f"baseline_{k}": v for k, v in base.exact.items()})
        exact.update({f"difference_{k}": cand.exact[k] - base.exact[k] for k in _PAIRED})
    if cfg.n_boot == 0:                       # estimates only: no histograms needed
        return bootstrap({name: lambda idx, v=v: v for name, v in exact.items()}, len(cand.z), 0,
                         cfg.seed)
    statistics = {f"candidate_{k}": fn for k, fn in cand.statistics(cfg.resample_bins).items()}
    if base is not None:
        base_stats = base.statistics(cfg.resample_bins)
        statistics.update({f"baseline_{k}": fn for k, fn in base_stats.items()})
        for k in _PAIRED:
            statistics[f"difference_{k}"] = \
                lambda idx, c=statistics[f"candidate_{k}"], b=base_stats[k]: c(idx) - b(idx)
    intervals = bootstrap(statistics, len(cand.z), cfg.n_boot, cfg.seed)
    return {name: replace(interval, estimate=exact[name]) for name, interval in intervals.items()}


def run(detector: Detector, data_root: str | Path, category: str, cfg: H7Config = H7Config(),
        baseline: Detector | None = None, cache_dir: Path | None | str = "default",
        progress: bool = True) -> H7Result:
    """Run H7 on the test images of ``category``.

    Args:
        detector: the analysed checkpoint.
        baseline: a λ = 0 checkpoint; adds its calibration on the same images and the paired
            differences (its features are recomputed only if its backbone differs).
        cache_dir: feature cache (``"default"``, a folder, or ``None`` for none).

    Raises:
        MechanismError: for missing data, a split without images, non-finite z, or z whose
            percentiles are all equal.
    """
    ckpt = detector.ckpt
    h, w, _ = ckpt.grid
    samples = analysed_samples(data_root, category, cfg)
    if len(samples) * h * w < 3:
        raise MechanismError(f"Shapiro-Wilk needs ≥ 3 values a channel: {len(samples)} images of "
                             f"{h}×{w} patches give {len(samples) * h * w}")
    features = detector.features(samples, cache_dir, progress)
    cand = _Latents.from_z(latents(detector, features, cfg.batch_size, progress))
    base = None
    if baseline is not None:
        if baseline.ckpt.backbone != ckpt.backbone:
            features = baseline.features(samples, cache_dir, progress)
        base = _Latents.from_z(latents(baseline, features, cfg.batch_size, progress))
    del features

    intervals = _intervals(cand, base, cfg)

    def role(name: str) -> dict[str, Interval]:
        return {k: intervals[f"{name}_{k}"] for k in _STATS}

    paired = None
    decision, reason = verdict(cand.exact["qq_correlation"], cand.exact["tail_error"])
    if base is not None:
        closer, closer_reason = tail_training_closer(intervals["difference_tail_error"])
        paired = H7Paired(checkpoint_label(baseline.ckpt), baseline.ckpt.loss.tail_weight,
                          *(PairedStat(intervals[f"baseline_{k}"], intervals[f"candidate_{k}"],
                                       intervals[f"difference_{k}"]) for k in _PAIRED),
                          closer, closer_reason)
        answer = {True: "yes", False: "no", None: "undetermined"}[closer]
        reason = (f"{reason}; tail training moves z closer to N(0, 1): {answer} (tail-error "
                  f"difference {intervals['difference_tail_error'].format('{:.4f}')})")
    method = (f"KS: {KS_METHOD}. Shapiro-Wilk: {SHAPIRO_METHOD} (seed {cfg.seed}). Point "
              f"estimates exact on all z; bootstrap percentiles from per-image histograms on "
              f"{cfg.resample_bins} equal-count bins (CDF linear within a bin), moments from "
              f"per-image sums. KS/Shapiro p-values treat correlated patch values as independent.")
    return H7Result(
        context=AnalysisContext(checkpoint_label(ckpt), category, SPLITS[cfg.split], len(samples),
                                h, w, h * w, tail_k(h * w, ckpt.loss.top_k_ratio),
                                float(ckpt.loss.top_k_ratio), cfg.seed, cfg.n_boot),
        config=asdict(cfg), percentile_levels=tuple(int(p) for p in QQ_PERCENTILES),
        theoretical_percentiles=tuple(float(t) for t in normal_quantiles(QQ_PERCENTILES)),
        candidate=cand.calibration(role("candidate"), cfg),
        baseline=None if base is None else base.calibration(role("baseline"), cfg),
        paired=paired, method=method, verdict=decision, verdict_reason=reason)
