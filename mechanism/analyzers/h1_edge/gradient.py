"""Image content of H1: the Sobel gradient magnitude of the grey input image per patch."""
from __future__ import annotations

import cv2
import numpy as np
from tqdm.auto import tqdm

from mechanism.data.images import load_image
from mechanism.data.mvtec import Sample
from mechanism.errors import MechanismError

LUMA_601 = np.array([0.299, 0.587, 0.114], dtype=np.float32)   # ITU-R BT.601 weights of R, G, B
GRADIENT_METHOD = ("cv2.Sobel ksize 3 (border reflect-101) of the ITU-R BT.601 luma of the "
                   "input-size RGB image in [0, 1]; magnitude sqrt(gx² + gy²) averaged over each "
                   "patch's S_h/H × S_w/W pixels")


def patch_gradient(image: np.ndarray, h: int, w: int) -> np.ndarray:
    """Mean Sobel gradient magnitude per patch, ``(h, w)`` float32 (grey levels of [0, 1] per
    pixel, unnormalised Sobel weights), of an RGB image ``(3, S_h, S_w)`` in [0, 1].

    Raises:
        MechanismError: if ``S_h``, ``S_w`` are not multiples of ``h``, ``w`` (no whole-pixel
            footprint).
    """
    _, rows, cols = image.shape
    if rows % h or cols % w:
        raise MechanismError(f"a {rows}×{cols} image does not split into a {h}×{w} patch grid")
    grey = np.tensordot(LUMA_601, image.astype(np.float32), axes=1)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = np.sqrt(gx * gx + gy * gy)
    return magnitude.reshape(h, rows // h, w, cols // w).mean(axis=(1, 3))


def image_patch_gradients(samples: list[Sample], size: tuple[int, int], h: int, w: int,
                          progress: bool = True) -> np.ndarray:
    """``patch_gradient`` of every sample read at the model input shape ``size`` (height, width),
    ``(n, h, w)`` float32."""
    return np.stack([patch_gradient(load_image(s.path, size), h, w)
                     for s in tqdm(samples, desc="H1 gradients", unit="img", disable=not progress)])
