"""Decode images and masks into the model's input grid.

Resize policy (``INPUT_POLICY``): every image is resized to the model's input shape
``(height, width)`` directly (one number: a square; the aspect ratio is that shape's, nothing
is cropped, so each mask pixel keeps its place), with ``cv2.INTER_AREA`` when either side
shrinks and ``cv2.INTER_LINEAR`` when neither does. Grey and RGBA images become RGB. Masks are
resized by nearest neighbour and binarised (> 0); a mask must have its image's size (MVTec masks
do), since a mask of another size cannot say which pixels it marks.

Decoding limits: 8- and 16-bit images (16-bit scaled by 1/257 to 8 bits) with 1, 3 or 4
channels; anything else (float or 32-bit pixels, 2 channels) is refused, as is a file OpenCV
will not decode (e.g. one declaring more than its pixel limit, 2³⁰ by default), each with one
``MechanismError`` naming the file.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from mechanism.errors import MechanismError

INPUT_POLICY = "direct-resize(area-down,linear-up)/rgb/[0,1]"
MAX_SIDE = 4096   # pixels: the largest input side


def as_shape(size: int | tuple[int, int]) -> tuple[int, int]:
    """An input size as ``(height, width)`` in pixels: one number is a square.

    Raises:
        MechanismError: for a side outside [1, ``MAX_SIDE``] or not an integer.
    """
    shape = (size, size) if isinstance(size, int) else tuple(size) if isinstance(size, (tuple, list)) else ()
    if len(shape) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_SIDE
                              for v in shape):
        raise MechanismError(f"an input size is one side or (height, width), each 1 to "
                             f"{MAX_SIDE} pixels; got {size!r}")
    return shape


def shape_text(size: int | tuple[int, int]) -> str:
    """``"224×224"`` / ``"192×448"``: an input size as height×width."""
    h, w = as_shape(size)
    return f"{h}×{w}"


def _read(path: Path, flags: int) -> np.ndarray:
    data = np.fromfile(str(path), dtype=np.uint8) if Path(path).is_file() else None
    try:
        img = cv2.imdecode(data, flags) if data is not None and data.size else None
    except cv2.error as e:
        reason = str(e).strip().splitlines()[-1].split("error: ", 1)[-1]
        raise MechanismError(f"cannot decode image {path} ({reason})") from None
    if img is None:
        raise MechanismError(f"cannot read image {path}: missing, empty or not an image")
    if img.dtype not in (np.uint8, np.uint16):
        raise MechanismError(f"image {path} has {img.dtype} pixels: only 8- and 16-bit images "
                             "are read")
    if img.ndim == 3 and img.shape[2] not in (3, 4):
        raise MechanismError(f"image {path} has {img.shape[2]} channels: grey, RGB or RGBA "
                             "images are read")
    return img


def load_image(path: str | Path, size: int | tuple[int, int]) -> np.ndarray:
    """Read one image as RGB float32 in [0, 1], shape ``(3, H, W)`` for ``size`` ``(H, W)``
    (one number: a square).

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
    height, width = as_shape(size)
    h, w = img.shape[:2]
    interp = cv2.INTER_AREA if (h > height or w > width) else cv2.INTER_LINEAR
    if (h, w) != (height, width):
        img = cv2.resize(img, (width, height), interpolation=interp)
    return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32) / 255.0


def image_shape(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` in pixels of an image file, from its header (nothing is decoded).

    Raises:
        MechanismError: if the file is missing or not an image.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                return img.height, img.width
    except Image.DecompressionBombError:
        raise MechanismError(f"image {path} declares more than {2 * Image.MAX_IMAGE_PIXELS} "
                             "pixels (Pillow's limit): split or shrink it") from None
    except (OSError, UnidentifiedImageError):
        raise MechanismError(f"cannot read image {path}: missing, empty or not an image") from None


def load_mask(path: str | Path | None, size: int | tuple[int, int],
              image: str | Path | None = None) -> np.ndarray:
    """Read a ground-truth mask as uint8 {0, 1}, shape ``(H, W)`` for ``size`` ``(H, W)`` (one
    number: a square); ``None`` → all zeros.

    ``image``: the mask's image; its size must equal the mask's.

    Raises:
        MechanismError: if the file cannot be decoded, or its size differs from ``image``'s.
    """
    shape = as_shape(size)
    if path is None:
        return np.zeros(shape, dtype=np.uint8)
    m = _read(Path(path), cv2.IMREAD_GRAYSCALE)
    if image is not None and m.shape != image_shape(image):
        (mh, mw), (ih, iw) = m.shape, image_shape(image)
        raise MechanismError(f"mask {path} is {mw}×{mh} pixels but its image {image} is {iw}×{ih}: "
                             "a mask must have its image's size")
    if m.shape != shape:
        m = cv2.resize(m, shape[::-1], interpolation=cv2.INTER_NEAREST)
    return (m > 0).astype(np.uint8)
