"""Top-k purity: how many of the k patches a selection picks are among the "truly hard" ones.

Per image, ``top_k(scores)`` is the set of the k highest-scoring patches. Ties are broken toward
the lower flat patch index (a stable descending sort), so a top-k set is always a prefix of one
fixed order and the sets are nested in k; ``torch.topk`` leaves tie order unspecified and is not
used here.

    purity_i = |top_k(selection_i) ∩ top_{k_ref}(reference_i)| / k
    oracle   = min(1, k_ref / k)      (perfect selection: the k highest reference patches)
    chance   = k_ref / N              (expected purity of k uniformly random patches, any k)
"""
from __future__ import annotations

import numpy as np


def _check_scores(name: str, scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[1] < 1:
        raise ValueError(f"{name} must have shape (n_images, n_patches), got {scores.shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{name} holds non-finite values")
    return scores


def _check_k(name: str, k: int, n_patches: int) -> None:
    if not 1 <= k <= n_patches:
        raise ValueError(f"{name} must lie in [1, {n_patches}], got {k}")


def top_k_mask(scores: np.ndarray, k: int) -> np.ndarray:
    """Boolean ``(n, N)`` mask of each row's k highest scores (ties → lower index first).

    Args:
        scores: ``(n, N)`` finite scores, higher = harder.
        k: patches per row, 1 ≤ k ≤ N.
    """
    scores = _check_scores("scores", scores)
    _check_k("k", k, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    mask = np.zeros(scores.shape, dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask


def topk_purity(selection_scores: np.ndarray, reference_scores: np.ndarray, k: int,
                k_ref: int) -> np.ndarray:
    """Per-image purity ``(n,)`` float64 in [0, min(1, k_ref/k)].

    Args:
        selection_scores: ``(n, N)`` scores the selection ranks by (e.g. NLL, nats/dim).
        reference_scores: ``(n, N)`` scores that define the truly hard patches.
        k: selected patches per image, 1 ≤ k ≤ N.
        k_ref: truly hard patches per image, 1 ≤ k_ref ≤ N.

    Raises:
        ValueError: shapes that differ or are not 2-D, non-finite scores, k or k_ref out of range.
    """
    selection_scores = _check_scores("selection_scores", selection_scores)
    reference_scores = _check_scores("reference_scores", reference_scores)
    if selection_scores.shape != reference_scores.shape:
        raise ValueError(f"selection {selection_scores.shape} and reference "
                         f"{reference_scores.shape} scores differ in shape")
    _check_k("k_ref", k_ref, reference_scores.shape[1])
    overlap = (top_k_mask(selection_scores, k) & top_k_mask(reference_scores, k_ref)).sum(axis=1)
    return overlap / k


def oracle_purity(k: int, k_ref: int) -> float:
    """The purity a perfect selection reaches: ``min(1, k_ref / k)``."""
    return min(1.0, k_ref / k)


def chance_purity(k_ref: int, n_patches: int) -> float:
    """Expected purity of k uniformly random patches (the same for every k): ``k_ref / N``."""
    return k_ref / n_patches
