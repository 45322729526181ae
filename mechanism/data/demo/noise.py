"""Textures of the demo set: Perlin and fractal noise, and the source photographs (crop, tint).

The photographs are scikit-image's grey 512×512 ``data.brick()``, ``data.grass()`` and
``data.gravel()``, one per category (``DEMO_CATEGORIES``).
"""
from __future__ import annotations

import functools

import cv2
import numpy as np

DEMO_CATEGORIES = ("brick", "grass", "gravel")
CROP_SIDE = 256            # source pixels covered by a crop before the ±10 % scale jitter
TINTS = {                  # RGB gains per category (grey → mildly coloured RGB)
    "brick": (1.10, 0.96, 0.88),
    "grass": (0.92, 1.06, 0.90),
    "gravel": (1.03, 1.00, 0.95),
}


def perlin_noise(shape: tuple[int, int], cells: int, rng: np.random.Generator) -> np.ndarray:
    """2-D gradient (Perlin) noise, float32 ``shape``, values in [-1, 1].

    ``cells`` lattice cells span each axis (feature size ≈ side / cells pixels); the gradient at
    each lattice point is a random unit vector, blended with the quintic fade 6t⁵ − 15t⁴ + 10t³.
    """
    h, w = shape
    angles = rng.uniform(0.0, 2.0 * np.pi, size=(cells + 1, cells + 1)).astype(np.float32)
    grad_y, grad_x = np.sin(angles), np.cos(angles)
    y = np.arange(h, dtype=np.float32) * np.float32(cells / h)
    x = np.arange(w, dtype=np.float32) * np.float32(cells / w)
    yi, xi = y.astype(int), x.astype(int)
    fy, fx = (y - np.floor(y))[:, None], (x - np.floor(x))[None, :]

    def corner(dy: int, dx: int) -> np.ndarray:
        gy = grad_y[yi + dy][:, xi + dx]
        gx = grad_x[yi + dy][:, xi + dx]
        return gy * (fy - dy) + gx * (fx - dx)

    def fade(t: np.ndarray) -> np.ndarray:
        return t * t * t * (t * (6.0 * t - 15.0) + 10.0)

    u, v = fade(fy), fade(fx)
    top = corner(0, 0) * (1 - v) + corner(0, 1) * v
    bottom = corner(1, 0) * (1 - v) + corner(1, 1) * v
    return np.float32(np.sqrt(2.0)) * (top * (1 - u) + bottom * u)


def fractal_noise(shape: tuple[int, int], cells: int, octaves: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Sum of ``octaves`` Perlin layers (cells doubling, amplitude halving), float32 ``shape``,
    normalised so its amplitude bound is 1."""
    total = np.zeros(shape, dtype=np.float32)
    for k in range(octaves):
        total += 0.5 ** k * perlin_noise(shape, cells * 2 ** k, rng)
    return total / np.float32(2.0 - 0.5 ** (octaves - 1))


@functools.lru_cache(maxsize=None)
def photo(category: str) -> np.ndarray:
    """The source photograph of ``category``, float32 (512, 512), grey levels 0–255."""
    import skimage.data
    return getattr(skimage.data, category)().astype(np.float32)


def crop(image: np.ndarray, side: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``side``² crop of ``image`` resized to ``size``² (``cv2.INTER_AREA`` when
    shrinking, ``INTER_LINEAR`` when enlarging), float32."""
    y0 = int(rng.integers(0, image.shape[0] - side + 1))
    x0 = int(rng.integers(0, image.shape[1] - side + 1))
    patch = image[y0:y0 + side, x0:x0 + side]
    if side == size:
        return patch.copy()
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interp)


def tint(grey: np.ndarray, category: str) -> np.ndarray:
    """(H, W) grey → (H, W, 3) float32 RGB with the category tint (``TINTS``)."""
    return grey[..., None] * np.asarray(TINTS[category], dtype=np.float32)
