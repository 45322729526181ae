"""One model's latents z on the analysed images: exact statistics, and the same statistics as
functions of resampled images (per-image sums and histograms) for the bootstrap."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from mechanism.stats.evidence import ALPHA
from mechanism.analyzers.h7_calibration.result import H7Config, LatentCalibration
from mechanism.errors import MechanismError
from mechanism.eval.detector import Detector
from mechanism.stats.bootstrap import Interval, Statistic
from mechanism.stats.calibration import (QQ_PERCENTILES, TAIL_PERCENTILES, PooledHistograms,
                                         PooledMoments, channel_normality,
                                         qq_correlation_of_percentiles, quantile_table,
                                         tail_error_of_percentiles)


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
class ModelLatents:
    """One model's z with its exact statistics and resampling functions."""
    z: np.ndarray                       # (n, D, H, W) float32
    exact: dict[str, float]             # CALIBRATION_STATS → exact value on all z
    percentiles: np.ndarray             # (99,) exact percentiles 1..99

    @classmethod
    def from_z(cls, z: np.ndarray) -> "ModelLatents":
        """Raises MechanismError when the percentiles 1..99 are all equal (QQ r undefined)."""
        flat = z.reshape(-1)
        percentiles = np.percentile(flat, QQ_PERCENTILES).astype(np.float64)
        qq = qq_correlation_of_percentiles(percentiles)
        if not np.isfinite(qq):
            raise MechanismError("QQ correlation undefined: the z percentiles 1..99 are all equal")
        std = float(flat.std(dtype=np.float64))
        exact = {"z_mean": float(flat.mean(dtype=np.float64)), "z_std": std,
                 "scale_error": abs(std - 1.0),
                 "qq_correlation": qq, "tail_error": tail_error_of_percentiles(percentiles)}
        return cls(z, exact, percentiles)

    def statistics(self, n_bins: int) -> dict[str, Statistic]:
        """CALIBRATION_STATS → function of resampled image indices (for ``bootstrap``)."""
        per_image = self.z.reshape(len(self.z), -1)
        moments = PooledMoments.from_values(per_image)
        resampled = _ResampledPercentiles(PooledHistograms.from_values(per_image, n_bins), len(self.z))

        def weights(idx: np.ndarray) -> np.ndarray:
            return np.bincount(idx, minlength=len(self.z)).astype(np.float64)

        return {"z_mean": lambda idx: moments.mean(weights(idx)),
                "z_std": lambda idx: moments.std(weights(idx)),
                "scale_error": lambda idx: abs(moments.std(weights(idx)) - 1.0),
                "qq_correlation": lambda idx: qq_correlation_of_percentiles(resampled(idx)),
                "tail_error": lambda idx: tail_error_of_percentiles(resampled(idx))}

    def calibration(self, intervals: dict[str, Interval], cfg: H7Config) -> LatentCalibration:
        """The record, with ``intervals`` (keyed by CALIBRATION_STATS) and the per-channel tests."""
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
