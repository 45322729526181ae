"""The embedded demo data set: real texture photographs with synthetic defects, in MVTec AD layout.

Sources: scikit-image's grey 512×512 photographs ``data.brick()``, ``data.grass()`` and
``data.gravel()``, one category each (``DEMO_CATEGORIES``).

Normal images: a random square crop covering ``CROP_SIDE`` ± 10 % source pixels (half the photo
side), resized to ``size`` (``cv2.INTER_AREA``), randomly flipped left-right and up-down, turned
by a multiple of 90° for grass and gravel only (brick has an orientation), then a small
gain/offset jitter, and finally a mild fixed per-category tint (``TINTS``) that turns grey into
RGB. Content therefore does not depend on ``size``: a smaller ``size`` is the same crop at lower
resolution.

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

Determinism: each image draws from ``numpy.random.default_rng([seed, category, split, defect,
index])``, so an image depends only on its own key, not on the counts or the order of
generation; smaller counts give a prefix of the default set.
"""
from __future__ import annotations

import functools
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from mechanism.data.mvtec import Split
from mechanism.errors import MechanismError

DEMO_CATEGORIES = ("brick", "grass", "gravel")
DEFECT_TYPES = ("foreign", "scratch", "hole", "color")
CROP_SIDE = 256            # source pixels covered by a crop before the ±10 % scale jitter
MASK_THRESHOLD = 0.5       # mask = footprint alpha > this
TINTS = {                  # RGB gains per category (grey → mildly coloured RGB)
    "brick": (1.10, 0.96, 0.88),
    "grass": (0.92, 1.06, 0.90),
    "gravel": (1.03, 1.00, 0.95),
}
_ROTATABLE = {"brick": False, "grass": True, "gravel": True}
_SPLIT_KEYS = {"train": 0, "test": 1}
_EDGE_SIGMA = 1.0          # soft edge of blob footprints, pixels
_EDGE_KSIZE = 7            # Gaussian kernel side: the soft edge reaches at most 3 px outward
# Blobs are opened with a 5 px disc first: no part narrower than that, whose blurred alpha would
# stay below MASK_THRESHOLD (changed but unmasked), survives.
_OPEN_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
_MIN_BLOB_RADIUS = 4.0    # pixels: smaller blobs would not survive the opening
_EDGE_REACH = np.ones((7, 7), np.uint8)   # alpha is cut to 0 beyond 3 px (Chebyshev) of the mask


@dataclass(frozen=True)
class DemoSample:
    """One rendered image.

    Attributes:
        clean: the defect-free image, uint8 RGB ``(size, size, 3)``.
        image: the image as written, uint8 RGB ``(size, size, 3)``; equals ``clean`` for good ones.
        mask: ground truth, bool ``(size, size)``; all False for good images.
    """
    clean: np.ndarray
    image: np.ndarray
    mask: np.ndarray


@dataclass(frozen=True)
class DemoSummary:
    """What ``generate_demo`` wrote.

    Attributes:
        path: the data set root; it holds one MVTec-style folder per category.
        seed: the generator seed.
        size: image side, pixels.
        train: category → number of ``train/good`` images.
        test: category → {``"good"`` or defect name → number of ``test/<defect>`` images}.
    """
    path: Path
    seed: int
    size: int
    train: dict[str, int]
    test: dict[str, dict[str, int]]

    def to_dict(self) -> dict:
        return {"path": str(self.path), "seed": self.seed, "size": self.size,
                "train": dict(self.train), "test": {c: dict(d) for c, d in self.test.items()}}


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
def _photo(category: str) -> np.ndarray:
    """The source photograph, float32 (512, 512), grey levels 0–255."""
    import skimage.data
    return getattr(skimage.data, category)().astype(np.float32)


def _crop(photo: np.ndarray, side: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``side``² crop of ``photo`` resized to ``size``², float32."""
    y0 = int(rng.integers(0, photo.shape[0] - side + 1))
    x0 = int(rng.integers(0, photo.shape[1] - side + 1))
    patch = photo[y0:y0 + side, x0:x0 + side]
    if side == size:
        return patch.copy()
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interp)


def _tint(grey: np.ndarray, category: str) -> np.ndarray:
    """(H, W) grey → (H, W, 3) float32 RGB with the category tint."""
    return grey[..., None] * np.asarray(TINTS[category], dtype=np.float32)


def _clean_grey(category: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A normal image in grey levels, float32 ``(size, size)``."""
    side = int(round(CROP_SIDE * rng.uniform(0.9, 1.1)))
    grey = _crop(_photo(category), side, size, rng)
    if rng.random() < 0.5:
        grey = grey[:, ::-1]
    if rng.random() < 0.5:
        grey = grey[::-1, :]
    if _ROTATABLE[category]:
        grey = np.rot90(grey, int(rng.integers(0, 4)))
    gain, offset = rng.uniform(0.93, 1.07), rng.uniform(-6.0, 6.0)
    mean = grey.mean()
    return np.ascontiguousarray((grey - mean) * gain + mean + offset, dtype=np.float32)


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
    grey = _crop(_photo(source), side, size, rng)
    clean_grey = clean.mean(axis=-1)
    grey = (grey - grey.mean()) / max(float(grey.std()), 1e-3)
    grey = grey * clean_grey.std() + clean_grey.mean()
    opacity = rng.uniform(0.7, 1.0)
    target = clean + opacity * (_tint(grey, category) - clean)
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


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def render_sample(category: str, split: Split, defect: str, index: int, seed: int,
                  size: int) -> DemoSample:
    """Render one image of the demo set from its key alone.

    Args:
        category: one of ``DEMO_CATEGORIES``.
        split: ``"train"`` or ``"test"``.
        defect: ``"good"`` or one of ``DEFECT_TYPES`` (defects only in ``"test"``).
        index: the image's number inside its folder.
        seed: generator seed (≥ 0).
        size: image side, pixels.
    """
    if category not in DEMO_CATEGORIES:
        raise MechanismError(f"unknown demo category {category!r}: use {', '.join(DEMO_CATEGORIES)}")
    if split not in _SPLIT_KEYS:
        raise MechanismError(f"unknown split {split!r}: use train or test")
    if defect != "good" and (defect not in _DEFECTS or split != "test"):
        raise MechanismError(f"unknown demo defect {defect!r} for split {split!r}")
    defect_key = 0 if defect == "good" else 1 + DEFECT_TYPES.index(defect)
    rng = np.random.default_rng(
        [seed, DEMO_CATEGORIES.index(category), _SPLIT_KEYS[split], defect_key, index])
    clean = _tint(_clean_grey(category, size, rng), category)
    clean_u8 = _to_uint8(clean)
    if defect == "good":
        return DemoSample(clean_u8, clean_u8, np.zeros((size, size), dtype=bool))
    target, alpha = _DEFECTS[defect](category, clean, rng)
    mask = alpha > MASK_THRESHOLD
    alpha = alpha * cv2.dilate(mask.astype(np.float32), _EDGE_REACH)
    image = clean + alpha[..., None] * (target - clean)
    return DemoSample(clean_u8, _to_uint8(image), mask)


def defect_counts(n_test_defect: int) -> dict[str, int]:
    """Split ``n_test_defect`` images over ``DEFECT_TYPES`` round robin (earlier types get the
    remainder); types with no image are left out."""
    base, extra = divmod(n_test_defect, len(DEFECT_TYPES))
    counts = {d: base + (k < extra) for k, d in enumerate(DEFECT_TYPES)}
    return {d: n for d, n in counts.items() if n > 0}


def _write_png(path: Path, img: np.ndarray) -> None:
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), img):
        raise MechanismError(f"cannot write image {path}")


def _check_arguments(seed: int, categories: Sequence[str], counts: dict[str, int]) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise MechanismError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(categories, str):
        raise MechanismError(f"categories must be a sequence of names, got the string {categories!r}")
    if not categories:
        raise MechanismError(f"no demo category chosen: use some of {', '.join(DEMO_CATEGORIES)}")
    unknown = [c for c in categories if c not in DEMO_CATEGORIES]
    if unknown:
        raise MechanismError(
            f"unknown demo categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(map(repr, unknown))}: "
            f"use {', '.join(DEMO_CATEGORIES)}")
    if len(set(categories)) != len(categories):
        raise MechanismError(f"demo categories repeat: {', '.join(categories)}")
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise MechanismError(f"{name} must be a positive integer, got {value!r}")


def _replace_folder(tmp: Path, out: Path) -> None:
    """Move the finished ``tmp`` folder onto ``out``, replacing whatever ``out`` held."""
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        os.replace(out, old / out.name)
        os.replace(tmp, out)
        shutil.rmtree(old)
    else:
        os.replace(tmp, out)


def generate_demo(out: str | Path, seed: int = 0,
                  categories: Sequence[str] = DEMO_CATEGORIES, n_train: int = 200,
                  n_test_good: int = 40, n_test_defect: int = 60, size: int = 256,
                  overwrite: bool = False, progress: bool = False) -> DemoSummary:
    """Write the demo data set to ``out`` in MVTec AD layout (see the module docstring).

    Per category: ``n_train`` images in ``train/good``, ``n_test_good`` in ``test/good`` and
    ``n_test_defect`` defective ones split over ``test/<defect>`` (``defect_counts``), each with
    ``ground_truth/<defect>/NNN_mask.png`` (uint8, 0 or 255). Images are RGB PNGs ``size``².
    Everything is written to a temporary sibling folder that replaces ``out`` only when complete.

    Raises:
        MechanismError: for bad arguments, a non-empty ``out`` without ``overwrite``, ``out``
            being a file, or an unwritable location.
    """
    _check_arguments(seed, categories, {"n_train": n_train, "n_test_good": n_test_good,
                                        "n_test_defect": n_test_defect, "size": size})
    if size < 32:
        raise MechanismError(f"size must be at least 32 pixels, got {size}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise MechanismError(f"output {out} is a file, expected a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise MechanismError(f"output folder {out} is not empty: choose another or allow overwriting")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as e:
        raise MechanismError(f"cannot create a folder next to {out}: {e.strerror}") from None

    jobs = []                                  # (category, split, defect, index)
    for cat in categories:
        jobs += [(cat, "train", "good", i) for i in range(n_train)]
        jobs += [(cat, "test", "good", i) for i in range(n_test_good)]
        for defect, n in defect_counts(n_test_defect).items():
            jobs += [(cat, "test", defect, i) for i in range(n)]
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(jobs), desc="demo data", unit="img")
    try:
        for cat, split, defect, index in jobs:
            folder = tmp / cat / split / defect
            folder.mkdir(parents=True, exist_ok=True)
            sample = render_sample(cat, split, defect, index, seed, size)
            _write_png(folder / f"{index:03d}.png", sample.image)
            if defect != "good":
                gt = tmp / cat / "ground_truth" / defect
                gt.mkdir(parents=True, exist_ok=True)
                _write_png(gt / f"{index:03d}_mask.png", sample.mask.astype(np.uint8) * 255)
            if bar is not None:
                bar.update(1)
        _replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if bar is not None:
            bar.close()

    test = {c: {"good": n_test_good, **defect_counts(n_test_defect)} for c in categories}
    return DemoSummary(path=out, seed=int(seed), size=size,
                       train={c: n_train for c in categories}, test=test)
