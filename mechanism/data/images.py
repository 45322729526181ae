"""Decode images and masks into the model's input grid.

Resize policy (``INPUT_POLICY``): every image is resized to ``size×size`` directly (aspect ratio
not kept, nothing cropped, so each mask pixel keeps its place), with ``cv2.INTER_AREA`` when
shrinking and ``cv2.INTER_LINEAR`` when enlarging. Grey and RGBA images become RGB. Masks are
resized by nearest neighbour and binarised (> 0).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mechanism.errors import MechanismError

INPUT_POLICY = "direct-resize(area-down,linear-up)/rgb/[0,1]"


def _read(path: Path, flags: int) -> np.ndarray:
    data = np.fromfile(str(path), dtype=np.uint8) if Path(path).is_file() else None
    img = cv2.imdecode(data, flags) if data is not None and data.size else None
    if img is None:
        raise MechanismError(f"cannot read image {path}: missing, empty or not an image")
    return img


def load_image(path: str | Path, size: int) -> np.ndarray:
    """Read one image as RGB float32 in [0, 1], shape ``(3, size, size)``.

    Raises:
        MechanismError: if the file cannot be decoded.
    """
    img = _read(Path(path), cv2.IMREAD_UNCHANGED)
    if img.dtype == np.uint16:
        img = (img / 257.0).astype(np.uint8)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    else:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    h, w = img.shape[:2]
    interp = cv2.INTER_AREA if (h > size or w > size) else cv2.INTER_LINEAR
    if (h, w) != (size, size):
        img = cv2.resize(img, (size, size), interpolation=interp)
    return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32) / 255.0


def load_mask(path: str | Path | None, size: int) -> np.ndarray:
    """Read a ground-truth mask as uint8 {0, 1}, shape ``(size, size)``; ``None`` → all zeros.

    Raises:
        MechanismError: if the file cannot be decoded.
    """
    if path is None:
        return np.zeros((size, size), dtype=np.uint8)
    m = _read(Path(path), cv2.IMREAD_GRAYSCALE)
    if m.shape != (size, size):
        m = cv2.resize(m, (size, size), interpolation=cv2.INTER_NEAREST)
    return (m > 0).astype(np.uint8)
