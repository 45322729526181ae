"""Render demo images from their keys and write the demo data set in MVTec AD layout.

Normal images: a random square crop covering ``CROP_SIDE`` ± 10 % source pixels (half the photo
side), resized to ``size`` (``cv2.INTER_AREA``), randomly flipped left-right and up-down, turned
by a multiple of 90° for grass and gravel only (brick has an orientation), then a small
gain/offset jitter, and finally a mild fixed per-category tint (``TINTS``) that turns grey into
RGB. Content therefore does not depend on ``size``: a smaller ``size`` is the same crop at lower
resolution. Defective images add one defect of ``mechanism.data.demo.defects``.

Determinism: each image draws from ``numpy.random.default_rng([seed, category, split, defect,
index])``, so an image depends only on its own key, not on the counts or the order of
generation; smaller counts give a prefix of the default set.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from tqdm.auto import tqdm

from mechanism.data.demo.defects import DEFECT_TYPES, draw_defect
from mechanism.data.demo.noise import CROP_SIDE, DEMO_CATEGORIES, crop, photo, tint
from mechanism.data.mvtec import Split
from mechanism.errors import MechanismError
from mechanism.io.transaction import output_folder

_ROTATABLE = {"brick": False, "grass": True, "gravel": True}
_SPLIT_KEYS = {"train": 0, "test": 1}


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


def _clean_grey(category: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A normal image in grey levels, float32 ``(size, size)``."""
    side = int(round(CROP_SIDE * rng.uniform(0.9, 1.1)))
    grey = crop(photo(category), side, size, rng)
    if rng.random() < 0.5:
        grey = grey[:, ::-1]
    if rng.random() < 0.5:
        grey = grey[::-1, :]
    if _ROTATABLE[category]:
        grey = np.rot90(grey, int(rng.integers(0, 4)))
    gain, offset = rng.uniform(0.93, 1.07), rng.uniform(-6.0, 6.0)
    mean = grey.mean()
    return np.ascontiguousarray((grey - mean) * gain + mean + offset, dtype=np.float32)


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
    if defect != "good" and (defect not in DEFECT_TYPES or split != "test"):
        raise MechanismError(f"unknown demo defect {defect!r} for split {split!r}")
    defect_key = 0 if defect == "good" else 1 + DEFECT_TYPES.index(defect)
    rng = np.random.default_rng(
        [seed, DEMO_CATEGORIES.index(category), _SPLIT_KEYS[split], defect_key, index])
    clean = tint(_clean_grey(category, size, rng), category)
    clean_u8 = _to_uint8(clean)
    if defect == "good":
        return DemoSample(clean_u8, clean_u8, np.zeros((size, size), dtype=bool))
    image, mask = draw_defect(defect, category, clean, rng)
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


def generate_demo(out: str | Path, seed: int = 0,
                  categories: Sequence[str] = DEMO_CATEGORIES, n_train: int = 200,
                  n_test_good: int = 40, n_test_defect: int = 60, size: int = 256,
                  overwrite: bool = False, progress: bool = False) -> DemoSummary:
    """Write the demo data set to ``out`` in MVTec AD layout (see ``mechanism.data.demo``).

    Per category: ``n_train`` images in ``train/good``, ``n_test_good`` in ``test/good`` and
    ``n_test_defect`` defective ones split over ``test/<defect>`` (``defect_counts``), each with
    ``ground_truth/<defect>/NNN_mask.png`` (uint8, 0 or 255). Images are RGB PNGs ``size``².
    Everything is written to a temporary sibling folder that replaces ``out`` only when complete.

    Raises:
        MechanismError: for bad arguments, a non-empty ``out`` without ``overwrite``, ``out``
            being a file, the current folder or one above it, or an unwritable location.
    """
    _check_arguments(seed, categories, {"n_train": n_train, "n_test_good": n_test_good,
                                        "n_test_defect": n_test_defect, "size": size})
    if size < 32:
        raise MechanismError(f"size must be at least 32 pixels, got {size}")
    out = Path(out)
    here = Path.cwd().resolve()
    if out.resolve() == here or out.resolve() in here.parents:
        raise MechanismError(f"output folder {out} is the current folder or holds it, and the data "
                             "set replaces its output folder: give a new sub-folder, e.g. data/demo")
    if out.exists() and not out.is_dir():
        raise MechanismError(f"output {out} is a file, expected a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise MechanismError(f"output folder {out} is not empty: choose another or allow overwriting")

    jobs = []                                  # (category, split, defect, index)
    for cat in categories:
        jobs += [(cat, "train", "good", i) for i in range(n_train)]
        jobs += [(cat, "test", "good", i) for i in range(n_test_good)]
        for defect, n in defect_counts(n_test_defect).items():
            jobs += [(cat, "test", defect, i) for i in range(n)]
    with output_folder(out, keep_existing=False) as stage, \
            tqdm(total=len(jobs), desc="demo data", unit="img", disable=not progress) as bar:
        for cat, split, defect, index in jobs:
            folder = stage / cat / split / defect
            folder.mkdir(parents=True, exist_ok=True)
            sample = render_sample(cat, split, defect, index, seed, size)
            _write_png(folder / f"{index:03d}.png", sample.image)
            if defect != "good":
                gt = stage / cat / "ground_truth" / defect
                gt.mkdir(parents=True, exist_ok=True)
                _write_png(gt / f"{index:03d}_mask.png", sample.mask.astype(np.uint8) * 255)
            bar.update(1)

    test = {c: {"good": n_test_good, **defect_counts(n_test_defect)} for c in categories}
    return DemoSummary(path=out, seed=int(seed), size=size,
                       train={c: n_train for c in categories}, test=test)
