"""Reader for the MVTec AD folder layout.

    <root>/<category>/train/good/*.png
    <root>/<category>/test/good/*.png
    <root>/<category>/test/<defect>/<stem>.png
    <root>/<category>/ground_truth/<defect>/<stem>_mask.png

``root`` may be one category folder (it has ``train/`` and ``test/``) or a folder of several.
Nothing here decodes pixels: it lists samples and checks that the layout is complete. File and
folder names must be UTF-8 (results name the files they come from); others are refused.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mechanism.errors import MechanismError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
Split = Literal["train", "test"]


@dataclass(frozen=True)
class Sample:
    """One image of a data set.

    Attributes:
        path: the image file.
        category: e.g. ``"brick"``.
        defect: ``"good"`` or the defect folder name.
        label: 0 = normal, 1 = anomalous.
        mask_path: the ground-truth mask of a defective test image; ``None`` for good images.
    """
    path: Path
    category: str
    defect: str
    label: int
    mask_path: Path | None


def _is_category(folder: Path) -> bool:
    return (folder / "train").is_dir() and (folder / "test").is_dir()


def discover_categories(root: str | Path) -> dict[str, Path]:
    """Map category name → category folder under ``root`` (sorted by name).

    Raises:
        MechanismError: if ``root`` is missing or holds no MVTec-style category.
    """
    root = Path(root)
    _check_utf8(str(root.resolve()), "data folder path")
    if not root.is_dir():
        raise MechanismError(f"data folder {root} does not exist")
    if _is_category(root):
        return {root.resolve().name: root}
    found = {p.name: p for p in _entries(root) if p.is_dir() and _is_category(p)}
    if not found:
        raise MechanismError(
            f"{root} is not an MVTec AD-style folder: expected <category>/train/good and "
            f"<category>/test/<defect> (or train/ and test/ directly inside it)")
    return found


def _entries(folder: Path) -> list[Path]:
    """``folder``'s entries, sorted; a name that is not UTF-8 is refused (results, tables and
    manifests name the files they come from)."""
    entries = sorted(folder.iterdir())
    for p in entries:
        _check_utf8(p.name, f"{folder} holds a file or folder")
    return entries


def _check_utf8(name: str, what: str) -> None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise MechanismError(f"{what} whose name is not UTF-8 ({os.fsencode(name)!r}): rename "
                             "it or move it out of the data folder") from None


def _images(folder: Path) -> list[Path]:
    return [p for p in _entries(folder) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]


def category_folder(root: str | Path, category: str | None) -> tuple[str, Path]:
    """Pick one category; ``None`` is allowed only when ``root`` holds exactly one.

    Raises:
        MechanismError: for an unknown category or an ambiguous ``None``.
    """
    cats = discover_categories(root)
    if category is None:
        if len(cats) != 1:
            raise MechanismError(
                f"{root} holds {len(cats)} categories ({', '.join(cats)}): choose one with --category")
        return next(iter(cats.items()))
    if category not in cats:
        raise MechanismError(f"category {category!r} not found in {root}; it has: {', '.join(cats)}")
    return category, cats[category]


def read_split(root: str | Path, category: str | None, split: Split) -> list[Sample]:
    """List the samples of one category's split, sorted by (defect, file name).

    ``train`` holds only ``train/good``. ``test`` holds every ``test/<defect>`` folder; each
    defective image must have ``ground_truth/<defect>/<stem>_mask.png``.

    Raises:
        MechanismError: for a missing split folder, an empty split, or a missing mask.
    """
    if split not in ("train", "test"):
        raise MechanismError(f"unknown split {split!r}: use train or test")
    name, folder = category_folder(root, category)
    samples: list[Sample] = []
    if split == "train":
        good = folder / "train" / "good"
        if not good.is_dir():
            raise MechanismError(f"{good} is missing: training images must be in train/good")
        samples = [Sample(p, name, "good", 0, None) for p in _images(good)]
    else:
        for defect_dir in (p for p in _entries(folder / "test") if p.is_dir()):
            defect = defect_dir.name
            for img in _images(defect_dir):
                if defect == "good":
                    samples.append(Sample(img, name, defect, 0, None))
                    continue
                mask = folder / "ground_truth" / defect / f"{img.stem}_mask.png"
                if not mask.is_file():
                    raise MechanismError(f"defect image {img} has no mask: expected {mask}")
                samples.append(Sample(img, name, defect, 1, mask))
    if not samples:
        raise MechanismError(f"no images found in {folder / split}")
    if split == "test" and all(s.label == 0 for s in samples):
        raise MechanismError(f"{folder / 'test'} holds no defective images: metrics need both classes")
    return samples


def fingerprint(samples: list[Sample]) -> str:
    """SHA-256 (hex) over the relative names and bytes of every image and mask, in order.

    Two folders with the same files give the same fingerprint wherever they live.
    """
    h = hashlib.sha256()
    for s in samples:
        for p in (s.path, s.mask_path):
            if p is None:
                h.update(b"\0none")
                continue
            h.update(f"{s.category}/{s.defect}/{p.name}".encode())
            h.update(p.read_bytes())
    return h.hexdigest()
