"""The synthetic defects of the demo set and their ground-truth masks.

Defects (``DEFECT_TYPES``), each drawn on a clean image of the same category:

* ``foreign``: a Perlin-shaped patch of another texture (another photo, or the same photo at
  0.5–0.7× or 1.5–2× scale), matched to the image's mean and standard deviation, pasted with
  opacity 0.7–1.
* ``scratch``: 1–3 thin antialiased Bézier curves, lighter or darker than the surface.
* ``hole``: a dark irregular blob, darkest at its centre.
* ``color``: an irregular blob whose brightness and hue are shifted.

Sizes run from about 1 % to 15 % of the image area, strengths from subtle to obvious, skewed
towards subtle so that no category is trivially solved.

Mask definition: every defect has a soft footprint ``alpha`` in [0, 1] (a Perlin blob, opened
by a 5 px disc and blurred by a Gaussian of σ = 1 px, or antialiased curves). The image changes as
``image = clean + alpha * (target - clean)``, where the strength of the defect lives in
``target``, not in ``alpha``; the ground-truth mask is ``alpha > MASK_THRESHOLD`` (0.5), and
``alpha`` is set to 0 farther than 3 px (Chebyshev) from the mask. So pixels change only inside
the mask or in a soft band of at most 3 px around it, where ``alpha`` ≤ 0.5.
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from mechanism.data.demo.noise import CROP_SIDE, DEMO_CATEGORIES, crop, fractal_noise, photo, tint

DEFECT_TYPES = ("foreign", "scratch", "hole", "color")
MASK_THRESHOLD = 0.5       # mask = footprint alpha > this
_EDGE_SIGMA = 1.0          # soft edge of blob footprints, pixels
_EDGE_KSIZE = 7            # Gaussian kernel side: the soft edge reaches at most 3 px outward
# Blobs are opened with a 5 px disc first: no part narrower than that, whose blurred alpha would
# stay below MASK_THRESHOLD (changed but unmasked), survives.
_OPEN_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
_MIN_BLOB_RADIUS = 4.0    # pixels: smaller blobs would not survive the opening
_EDGE_REACH = np.ones((7, 7), np.uint8)   # alpha is cut to 0 beyond 3 px (Chebyshev) of the mask


def _subtle(rng: np.random.Generator, low: float, high: float) -> float:
    """A strength in [low, high], skewed towards ``low`` (``low + (high - low) * u**1.5``)."""
    return low + (high - low) * rng.random() ** 1.5


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _soften(shape: np.ndarray) -> np.ndarray:
    """Binary (H, W) footprint → soft alpha float32 in [0, 1] (Gaussian edge, σ = 1 px)."""
    return cv2.GaussianBlur(shape.astype(np.float32), (_EDGE_KSIZE, _EDGE_KSIZE), _EDGE_SIGMA)


def _blob_alpha(size: int, radius: float, rng: np.random.Generator) -> np.ndarray:
    """Soft alpha (size, size) of an irregular Perlin-shaped blob of about ``radius`` pixels,
    (at least ``_MIN_BLOB_RADIUS``) fully inside the image, with a non-empty mask."""
    radius = max(radius, _MIN_BLOB_RADIUS)
    while True:
        cy, cx = rng.uniform(radius, size - radius, size=2)
        aspect = rng.uniform(0.6, 1.6)
        theta = rng.uniform(0.0, np.pi)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        dy, dx = yy - cy, xx - cx
        along = (dx * np.cos(theta) + dy * np.sin(theta)) / (radius * np.sqrt(aspect))
        across = (-dx * np.sin(theta) + dy * np.cos(theta)) / (radius / np.sqrt(aspect))
        envelope = 1.0 - np.sqrt(along ** 2 + across ** 2)
        cells = max(2, int(round(size / (1.2 * radius))))
        noise = fractal_noise((size, size), cells, 3, rng)
        shape = (envelope + 0.6 * noise > 0.0).astype(np.uint8)
        alpha = _soften(cv2.morphologyEx(shape, cv2.MORPH_OPEN, _OPEN_KERNEL))
        if (alpha > MASK_THRESHOLD).any():
            return alpha


def _curve_alpha(size: int, rng: np.random.Generator) -> np.ndarray:
    """Soft alpha (size, size) of 1–3 thin (≥ 2 px) antialiased cubic Bézier curves, with a
    non-empty mask."""
    shift = 4                                     # cv2 sub-pixel bits
    while True:
        canvas = np.zeros((size, size), dtype=np.uint8)
        for _ in range(int(rng.integers(1, 4))):
            length = rng.uniform(0.15, 0.6) * size
            start = rng.uniform(0.1, 0.9, size=2) * size
            heading = rng.uniform(0.0, 2.0 * np.pi)
            end = start + length * np.array([np.cos(heading), np.sin(heading)])
            bend = rng.normal(0.0, 0.25 * length, size=(2, 2))
            c1 = start + (end - start) / 3 + bend[0]
            c2 = start + 2 * (end - start) / 3 + bend[1]
            t = np.linspace(0.0, 1.0, 64)[:, None]
            pts = ((1 - t) ** 3 * start + 3 * (1 - t) ** 2 * t * c1 + 3 * (1 - t) * t ** 2 * c2
                   + t ** 3 * end)
            thickness = max(2, int(round(rng.uniform(0.006, 0.018) * size)))
            cv2.polylines(canvas, [np.round(pts * 2 ** shift).astype(np.int32)], False, 255,
                          thickness=thickness, lineType=cv2.LINE_AA, shift=shift)
        alpha = canvas.astype(np.float32) / 255.0
        if (alpha > MASK_THRESHOLD).any():
            return alpha


# A defect maps (category, clean: (H, W, 3) float32 RGB grey levels, rng) to
# (target: (H, W, 3) float32, alpha: (H, W) float32 in [0, 1]); see the module docstring.
DefectDraw = tuple[np.ndarray, np.ndarray]


def _foreign(category: str, clean: np.ndarray, rng: np.random.Generator) -> DefectDraw:
    size = clean.shape[0]
    alpha = _blob_alpha(size, _log_uniform(rng, 0.07, 0.22) * size, rng)
    others = [c for c in DEMO_CATEGORIES if c != category]
    if rng.random() < 0.5:
        source, scale = others[int(rng.integers(0, len(others)))], rng.uniform(0.9, 1.1)
    else:
        source = category
        scale = rng.uniform(0.5, 0.7) if rng.random() < 0.5 else rng.uniform(1.5, 2.0)
    side = min(512, int(round(CROP_SIDE * scale)))
    grey = crop(photo(source), side, size, rng)
    clean_grey = clean.mean(axis=-1)
    grey = (grey - grey.mean()) / max(float(grey.std()), 1e-3)
    grey = grey * clean_grey.std() + clean_grey.mean()
    opacity = rng.uniform(0.7, 1.0)
    target = clean + opacity * (tint(grey, category) - clean)
    return target, alpha


def _scratch(category: str, clean: np.ndarray, rng: np.random.Generator) -> DefectDraw:
    alpha = _curve_alpha(clean.shape[0], rng)
    level = 255.0 if rng.random() < 0.5 else 0.0
    strength = _subtle(rng, 0.4, 0.95)
    return clean + strength * (level - clean), alpha


def _hole(category: str, clean: np.ndarray, rng: np.random.Generator) -> DefectDraw:
    size = clean.shape[0]
    alpha = _blob_alpha(size, _log_uniform(rng, 0.05, 0.15) * size, rng)
    inside = (alpha > MASK_THRESHOLD).astype(np.uint8)
    depth_map = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
    shade = 0.5 + 0.5 * depth_map / max(float(depth_map.max()), 1.0)   # 0.5 at rim → 1 at centre
    depth = _subtle(rng, 0.4, 0.9)
    return clean * (1.0 - depth * shade)[..., None], alpha


def _color(category: str, clean: np.ndarray, rng: np.random.Generator) -> DefectDraw:
    size = clean.shape[0]
    alpha = _blob_alpha(size, _log_uniform(rng, 0.05, 0.2) * size, rng)
    gain = 1.0 + rng.choice([-1.0, 1.0]) * _subtle(rng, 0.1, 0.35)
    hue = rng.normal(size=3)
    hue -= hue.mean()                                       # a colour shift of zero mean brightness
    hue *= _subtle(rng, 6.0, 30.0) / max(float(np.abs(hue).max()), 1e-6)
    return clean * gain + hue.astype(np.float32), alpha


_DEFECTS: dict[str, Callable[[str, np.ndarray, np.random.Generator], DefectDraw]] = {
    "foreign": _foreign, "scratch": _scratch, "hole": _hole, "color": _color,
}


def draw_defect(defect: str, category: str, clean: np.ndarray,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``defect`` (one of ``DEFECT_TYPES``) on ``clean`` (H, W, 3) float32 RGB.

    Returns the defective image, float32 (H, W, 3) (not yet rounded), and its mask, bool (H, W):
    the footprint above ``MASK_THRESHOLD``, with the footprint cut to 0 beyond 3 px of the mask.
    """
    target, alpha = _DEFECTS[defect](category, clean, rng)
    mask = alpha > MASK_THRESHOLD
    alpha = alpha * cv2.dilate(mask.astype(np.float32), _EDGE_REACH)
    return clean + alpha[..., None] * (target - clean), mask
