"""From per-patch scores to anomaly maps and image scores (SPEC §3). Pure functions, CPU.

Anomaly map: a per-patch score bilinearly upsampled to the input shape ``(height, width)``
(``align_corners=False``), then a Gaussian blur of ``sigma`` pixels at that size (``scipy.ndimage.gaussian_filter``,
reflecting borders), each image on its own. The per-patch score (``mechanism.flow.PATCH_SCORES``)
is the latent energy ½‖z‖²/D by default, as in FastFlow: on the demo set it localises defects
far better than the full NLL, whose log-det share rewards the flow for expanding unusual
patches (README, "Against anomalib's FastFlow"). SPEC §3's NLL map is ``map_score="nll"``; the
analyses always use the exact NLL.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from mechanism.data.images import as_shape
from mechanism.errors import MechanismError
from mechanism.eval.metrics.validate import require_finite
from mechanism.flow import PATCH_SCORES

IMAGE_SCORE_METHODS = ("top_area_mean", "top3_mean", "max", "mean")
"""``top_area_mean``: mean of the highest patch scores covering the study's image area, 3 of
196 patches (:func:`top_area_k`: 3 on its 14×14 grid, 12 on 28×28); ``top3_mean``: mean of the
3 largest patch scores (the study's, whatever the grid); ``max``: maximum of the anomaly map
(anomalib's); ``mean``: mean patch score."""

MAP_SCORE_WORDS = {"latent": "latent energy ½‖z‖²/D", "nll": "NLL"}
"""How reports name each per-patch score of ``mechanism.flow.PATCH_SCORES``."""

DEFAULT_MAP_SCORE = "latent"
DEFAULT_IMAGE_SCORE = "top_area_mean"
DEFAULT_SIGMA = 4.0  # Gaussian blur of the anomaly maps, pixels at the input size (SPEC §3)


def check_scoring(map_score: str, image_score: str) -> None:
    """Raise ``MechanismError`` on an unknown map score or image score method."""
    if map_score not in PATCH_SCORES:
        raise MechanismError(f"unknown map score {map_score!r}; choose one of {', '.join(PATCH_SCORES)}")
    if image_score not in IMAGE_SCORE_METHODS:
        raise MechanismError(f"unknown image score method {image_score!r}; choose one of "
                             f"{', '.join(IMAGE_SCORE_METHODS)}")


TOP_K = 3  # patches averaged by "top3_mean"
STUDY_GRID_PATCHES = 14 * 14  # the study's grid, on which "top_area_mean" averages TOP_K patches


def top_area_k(n_patches: int) -> int:
    """Patches averaged by ``top_area_mean`` on a grid of ``n_patches``: the study's top-3 of
    196 scaled to the same image area, ``max(1, round(3·N/196))``."""
    return max(1, round(TOP_K * n_patches / STUDY_GRID_PATCHES))


def _top_mean(per_image: np.ndarray, k: int) -> np.ndarray:
    """``(N,)`` mean of the ``k`` largest values of each row of ``per_image`` ``(N, P)``."""
    return np.partition(per_image, -k, axis=1)[:, -k:].mean(axis=1)


def _patch_grid(patch_scores: np.ndarray | torch.Tensor) -> np.ndarray:
    """``(N, H, W)`` finite per-patch scores as a numpy array."""
    arr = patch_scores.detach().cpu().numpy() if isinstance(patch_scores, torch.Tensor) \
        else np.asarray(patch_scores)
    if arr.ndim != 3 or 0 in arr.shape:
        raise MechanismError(f"patch scores must have shape (N, H, W) with no empty axis, "
                             f"got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise MechanismError(f"patch scores must be floating point, got dtype {arr.dtype}")
    require_finite(arr, "patch scores")
    return arr


def anomaly_maps(patch_scores: np.ndarray | torch.Tensor, size: int | tuple[int, int] = 224,
                 sigma: float = DEFAULT_SIGMA) -> np.ndarray:
    """Per-pixel anomaly maps from per-patch scores.

    Args:
        patch_scores: ``(N, H, W)`` score per patch, nats per dimension (higher = more anomalous).
        size: output ``(height, width)`` in pixels; one number: a square.
        sigma: Gaussian blur standard deviation in output pixels; 0 = no blur.

    Returns:
        ``(N, height, width)`` float32, same units as ``patch_scores``.

    Raises:
        MechanismError: on a wrong shape, non-finite scores, a side < 1 or ``sigma < 0``.
    """
    shape = as_shape(size)
    if not sigma >= 0:
        raise MechanismError(f"anomaly map blur sigma must be >= 0 pixels, got {sigma}")
    grid = torch.from_numpy(np.ascontiguousarray(_patch_grid(patch_scores), dtype=np.float32))
    upsampled = F.interpolate(grid[:, None], size=shape, mode="bilinear",
                              align_corners=False)[:, 0].numpy()
    return ndimage.gaussian_filter(upsampled, sigma=(0.0, sigma, sigma)).astype(np.float32,
                                                                              copy=False)


def image_scores(patch_scores: np.ndarray | torch.Tensor, maps: np.ndarray | None,
                 method: str) -> np.ndarray:
    """One anomaly score per image.

    Args:
        patch_scores: ``(N, H, W)`` score per patch, nats per dimension.
        maps: ``(N, height, width)`` anomaly maps from :func:`anomaly_maps`; required by ``"max"`` only.
        method: one of :data:`IMAGE_SCORE_METHODS`.

    Returns:
        ``(N,)`` float64, higher = more anomalous.

    Raises:
        MechanismError: on an unknown method, non-finite input, missing or mismatched maps, or
            fewer than 3 patches per image for ``"top3_mean"``.
    """
    if method not in IMAGE_SCORE_METHODS:
        raise MechanismError(f"unknown image score method {method!r}; "
                             f"choose one of {', '.join(IMAGE_SCORE_METHODS)}")
    grid = _patch_grid(patch_scores)
    per_image = grid.reshape(grid.shape[0], -1).astype(np.float64)  # (N, H*W)
    if method == "top_area_mean":
        return _top_mean(per_image, top_area_k(per_image.shape[1]))
    if method == "top3_mean":
        if per_image.shape[1] < TOP_K:
            raise MechanismError(f"top3_mean needs at least {TOP_K} patches per image, "
                                 f"got {per_image.shape[1]}")
        return _top_mean(per_image, TOP_K)
    if method == "mean":
        return per_image.mean(axis=1)
    if maps is None:
        raise MechanismError("image score method 'max' needs the anomaly maps")
    maps = np.asarray(maps)
    if maps.ndim != 3 or maps.shape[0] != grid.shape[0]:
        raise MechanismError(f"anomaly maps {maps.shape} do not match patch scores {grid.shape}")
    require_finite(maps, "anomaly maps")
    return maps.reshape(maps.shape[0], -1).max(axis=1).astype(np.float64)
