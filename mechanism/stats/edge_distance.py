"""Distance of patch-grid cells to the grid's border, its exact law under a uniform cell, and a
KS test of observed distances against that law (SPEC §4 H1).

The edge distance of cell ``(i, j)`` on an ``H×W`` grid is ``d = min(i, j, H−1−i, W−1−j)``
cells (0 on the border ring). For a uniformly random cell, ``P(d ≥ t) = max(0, H−2t)/H ·
max(0, W−2t)/W`` (the cell avoids the outer ``t`` rings), hence
``E[d] = Σ_{t≥1} max(0, H−2t)/H · max(0, W−2t)/W``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from mechanism.errors import MechanismError

KS_METHOD = ("one-sample KS against the exact discrete uniform-cell law; D = max over the "
             "support of |F_n − F|; p from Kolmogorov's exact finite-n law for continuous nulls "
             "(scipy.stats.kstwo), which is conservative for discrete data")


def _check_grid(h: int, w: int) -> None:
    if h < 1 or w < 1:
        raise MechanismError(f"a patch grid needs H, W ≥ 1, got {h}×{w}")


def max_edge_distance(h: int, w: int) -> int:
    """Largest edge distance on an ``h×w`` grid: ``(min(h, w) − 1) // 2`` cells."""
    _check_grid(h, w)
    return (min(h, w) - 1) // 2


def edge_distance_grid(h: int, w: int) -> np.ndarray:
    """Edge distance of every cell, ``(h, w)`` int64, in cells."""
    _check_grid(h, w)
    i = np.arange(h)[:, None]
    j = np.arange(w)[None, :]
    return np.minimum(np.minimum(i, h - 1 - i), np.minimum(j, w - 1 - j)).astype(np.int64)


SIDES = ("top", "bottom", "left", "right", "corners")


def grid_sides(h: int, w: int) -> dict[str, np.ndarray]:
    """``SIDES`` → ``(h·w,)`` bool mask of the cells on that side of an ``h×w`` grid (row-major):
    the top and bottom rows and the left and right columns each include their two corners;
    ``corners`` holds the (up to) four corner cells."""
    _check_grid(h, w)
    i, j = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    sides = {"top": i == 0, "bottom": i == h - 1, "left": j == 0, "right": j == w - 1}
    sides["corners"] = (sides["top"] | sides["bottom"]) & (sides["left"] | sides["right"])
    return {name: mask.ravel() for name, mask in sides.items()}


def _survival(h: int, w: int, t: np.ndarray) -> np.ndarray:
    """``P(d ≥ t)`` for a uniform cell, ``t ≥ 1`` (closed form)."""
    return np.maximum(0, h - 2 * t) / h * np.maximum(0, w - 2 * t) / w


def uniform_edge_distance_pmf(h: int, w: int) -> np.ndarray:
    """``P(d = t)`` for ``t = 0 … max_edge_distance(h, w)`` under a uniform cell, ``(T,)`` float64."""
    t = np.arange(1, max_edge_distance(h, w) + 2)
    survival = np.concatenate([[1.0], _survival(h, w, t)])   # P(d ≥ 0), P(d ≥ 1), …, P(d ≥ T) = 0
    return survival[:-1] - survival[1:]


def uniform_edge_distance_mean(h: int, w: int) -> float:
    """``E[d]`` in cells under a uniform cell (closed form; 14×14 → 1.857, 28×28 → 4.179)."""
    t = np.arange(1, max_edge_distance(h, w) + 1)
    return float(_survival(h, w, t).sum())


@dataclass(frozen=True)
class KSTest:
    """A one-sample Kolmogorov-Smirnov test."""
    statistic: float   # D = sup_t |F_n(t) − F(t)|
    p_value: float     # two-sided
    n: int             # sample size


def edge_distance_ks(distances: np.ndarray, h: int, w: int) -> KSTest:
    """Test observed edge distances against the uniform-cell law of an ``h×w`` grid.

    Both CDFs are right-continuous steps that jump only at ``0 … max_edge_distance``, so the
    supremum is attained on those integers and ``D`` is exact (``scipy.stats.kstest`` with a
    step CDF overstates ``D⁻``). The p-value treats the ``n`` distances as independent and uses
    the continuous-null law of ``D``, which is conservative (too large) for a discrete null;
    see ``KS_METHOD``.

    Args:
        distances: ``(n,)`` integer edge distances in cells.

    Raises:
        MechanismError: for an empty sample or a distance outside the grid's range.
    """
    d = np.asarray(distances).ravel()
    top = max_edge_distance(h, w)
    if d.size == 0:
        raise MechanismError("the KS test needs at least one edge distance")
    if not np.issubdtype(d.dtype, np.integer) or d.min() < 0 or d.max() > top:
        raise MechanismError(f"edge distances must be integers in [0, {top}] for a {h}×{w} grid")
    empirical = np.cumsum(np.bincount(d, minlength=top + 1)) / d.size
    expected = np.cumsum(uniform_edge_distance_pmf(h, w))
    statistic = float(np.max(np.abs(empirical - expected)))
    return KSTest(statistic, float(stats.kstwo.sf(statistic, d.size)), int(d.size))
