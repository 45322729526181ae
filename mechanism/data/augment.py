"""Seeded augmented views of images that keep the patch grid's correspondence.

A view is photometric jitter (contrast about the image's mean, brightness, Gaussian pixel noise),
clipped to [0, 1], optionally with a horizontal and/or vertical flip (off by default). Flips
permute grid cells exactly, so a map computed on the view (an NLL map ``(H, W)``) is mapped back
to the original grid by the same flips; no translation or rotation is used. Each image gets its own view, drawn from
``(seed, view, image index)`` only, so a view does not depend on batching or image order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from mechanism.errors import MechanismError


@dataclass(frozen=True)
class AugmentConfig:
    """How strongly views differ from the clean image."""
    flip_prob: float = 0.0        # probability of a horizontal flip, and (independently) of a vertical one;
                                  # off by default: the flow is position-conditioned, training does not flip,
                                  # and flipping an aligned object is itself a defect (MVTec metal_nut "flip")
    max_contrast: float = 0.1     # gain drawn uniformly from [1 − c, 1 + c], applied about the image mean
    max_brightness: float = 0.05  # bias drawn uniformly from [−b, b], in [0, 1] intensity units
    noise_std: float = 0.01       # std of additive Gaussian pixel noise, in [0, 1] intensity units

    def __post_init__(self):
        if not 0.0 <= self.flip_prob <= 1.0:
            raise MechanismError(f"flip probability must lie in [0, 1], got {self.flip_prob}")
        if not 0.0 <= self.max_contrast < 1.0:
            raise MechanismError(f"contrast jitter must lie in [0, 1), got {self.max_contrast}")
        if not 0.0 <= self.max_brightness <= 1.0:
            raise MechanismError(f"brightness jitter must lie in [0, 1], got {self.max_brightness}")
        if not self.noise_std >= 0.0:
            raise MechanismError(f"noise std must be ≥ 0, got {self.noise_std}")

    def describe(self) -> str:
        """One line for reports, e.g. ``"flips p = 0, contrast ±10%, brightness ±0.05, noise σ 0.01"``."""
        return (f"flips p = {self.flip_prob:g}, contrast ±{100 * self.max_contrast:g}%, "
                f"brightness ±{self.max_brightness:g}, noise σ {self.noise_std:g}")


@dataclass(frozen=True)
class View:
    """One image's augmentation: ``flip(clip(gain·(x − mean) + mean + bias + noise, 0, 1))``."""
    flip_h: bool      # mirror left–right (last axis)
    flip_v: bool      # mirror top–bottom (second-to-last axis)
    gain: float       # contrast factor about the image's mean intensity
    bias: float       # brightness offset
    noise_std: float  # std of the Gaussian pixel noise
    noise_seed: int   # seeds the noise (a CPU torch.Generator)

    def _flip_dims(self) -> list[int]:
        return [d for d, on in ((-2, self.flip_v), (-1, self.flip_h)) if on]

    def apply(self, image: torch.Tensor) -> torch.Tensor:
        """``image: (3, S_h, S_w)`` float in [0, 1] (CPU) → the view, same shape and dtype, in [0, 1]."""
        if image.ndim != 3:
            raise ValueError(f"a view applies to one image (3, H, W), got {tuple(image.shape)}")
        out = self.gain * image + ((1.0 - self.gain) * image.mean() + self.bias)  # exact for gain 1
        if self.noise_std > 0:
            gen = torch.Generator().manual_seed(self.noise_seed)
            out = out + self.noise_std * torch.randn(image.shape, generator=gen, dtype=image.dtype)
        out = out.clamp(0.0, 1.0)
        dims = self._flip_dims()
        return out.flip(dims) if dims else out

    def to_original_grid(self, grid_map: torch.Tensor) -> torch.Tensor:
        """A map ``(..., H, W)`` computed on the view, moved back onto the original image's grid."""
        dims = self._flip_dims()
        return grid_map.flip(dims) if dims else grid_map


def draw_view(cfg: AugmentConfig, seed: int, view: int, image: int) -> View:
    """The view number ``view`` of image number ``image`` under ``seed`` (all ≥ 0).

    Raises:
        MechanismError: for a negative seed, view or image number.
    """
    if min(seed, view, image) < 0:
        raise MechanismError(f"view seeds must be ≥ 0, got seed {seed}, view {view}, image {image}")
    rng = np.random.default_rng([seed, view, image])
    flip_h, flip_v = (rng.random(2) < cfg.flip_prob).tolist()
    return View(flip_h=flip_h, flip_v=flip_v,
                gain=float(1.0 + rng.uniform(-cfg.max_contrast, cfg.max_contrast)),
                bias=float(rng.uniform(-cfg.max_brightness, cfg.max_brightness)),
                noise_std=cfg.noise_std, noise_seed=int(rng.integers(2**62)))


def apply_views(images: torch.Tensor, views: Sequence[View]) -> torch.Tensor:
    """``images: (B, 3, S_h, S_w)`` in [0, 1] on the CPU, one view per image → the same shape."""
    if len(views) != len(images):
        raise ValueError(f"{len(views)} views for {len(images)} images")
    return torch.stack([v.apply(img) for v, img in zip(views, images)])


def maps_to_original_grid(maps: torch.Tensor, views: Sequence[View]) -> torch.Tensor:
    """``maps: (B, H, W)`` computed on the views → the same maps on the original grids."""
    if len(views) != len(maps):
        raise ValueError(f"{len(views)} views for {len(maps)} maps")
    return torch.stack([v.to_original_grid(m) for v, m in zip(views, maps)])
