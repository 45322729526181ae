"""Cliff's δ: ``P(a > b) − P(a < b)`` for a value ``a`` of one sample and ``b`` of another.

δ ∈ [−1, 1]; 1 when every ``a`` exceeds every ``b``, 0 for identical distributions. Computed
from ranks: with the Mann-Whitney statistic ``U_a`` (ties count ½), ``δ = 2·U_a/(n_a·n_b) − 1``.
For a bootstrap over images, ``cliffs_sign_matrix`` holds the pairwise sign sums between the
images' groups so that δ of any resample is a quadratic form (``resampled_cliffs_delta``).
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from mechanism.errors import MechanismError


def cliffs_delta(a: np.ndarray, b: np.ndarray) -> float:
    """Cliff's δ of sample ``a`` against sample ``b`` (any shapes, flattened), O(n log n).

    Raises:
        MechanismError: if a sample is empty or holds a non-finite value.
    """
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.size == 0 or b.size == 0:
        raise MechanismError("Cliff's δ needs two non-empty samples")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise MechanismError("Cliff's δ got a non-finite value")
    ranks = stats.rankdata(np.concatenate([a, b]))          # mid-ranks: ties count ½
    u_a = ranks[:a.size].sum() - a.size * (a.size + 1) / 2
    return float(2.0 * u_a / (a.size * b.size) - 1.0)


def cliffs_sign_matrix(a_groups: np.ndarray, b_groups: np.ndarray) -> np.ndarray:
    """``S[i, j] = Σ_{x ∈ a_groups[i], y ∈ b_groups[j]} sign(x − y)``, ``(n, n)`` int64.

    Args:
        a_groups: ``(n, k_a)`` values of sample a, one row per unit (image).
        b_groups: ``(n, k_b)`` values of sample b, same units.

    Cost: ``O(n² · k_a · log k_b)`` time, ``O(n²)`` memory.
    """
    a_groups, b_groups = np.asarray(a_groups), np.asarray(b_groups)
    if a_groups.ndim != 2 or b_groups.ndim != 2 or len(a_groups) != len(b_groups):
        raise ValueError(f"need (n, k_a) and (n, k_b) groups, got {a_groups.shape} and {b_groups.shape}")
    n, k_a = a_groups.shape
    k_b = b_groups.shape[1]
    b_sorted = np.sort(b_groups, axis=1)
    a_flat = a_groups.ravel()
    signs = np.empty((n, n), dtype=np.int64)
    for j in range(n):
        below = np.searchsorted(b_sorted[j], a_flat, side="left")            # #{y < x}
        above = k_b - np.searchsorted(b_sorted[j], a_flat, side="right")     # #{y > x}
        signs[:, j] = (below - above).reshape(n, k_a).sum(axis=1)
    return signs


def resampled_cliffs_delta(signs: np.ndarray, weights: np.ndarray, k_a: int, k_b: int) -> float:
    """δ of the pooled groups when unit ``i`` appears ``weights[i]`` times.

    ``δ = wᵀ S w / (k_a·Σw · k_b·Σw)`` with ``S = cliffs_sign_matrix(...)`` (``(n, n)``) and
    ``weights`` ``(n,)`` non-negative counts (all ones: the plain δ of the pooled samples).
    """
    w = np.asarray(weights, dtype=np.float64)
    total = w.sum()
    return float(w @ signs @ w / (k_a * k_b * total * total))
