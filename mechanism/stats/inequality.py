"""The Gini coefficient of non-negative values (how unequally a total is spread over items).

    G = Σ_i Σ_j |x_i − x_j| / (2 · n² · mean(x))

G = 0 when every value is equal, (n − 1)/n when one item holds everything. Computed from the
sorted values, ``G = 2·Σ_i i·x_(i) / (n·Σ x) − (n + 1)/n`` (i = 1..n, ascending), O(n log n).
An all-zero slice has no total to share out: its Gini is undefined and returned as NaN.
"""
from __future__ import annotations

import numpy as np

from mechanism.errors import MechanismError


def gini(values: np.ndarray, axis: int = -1) -> np.ndarray | float:
    """Gini coefficient along ``axis`` of non-negative values.

    Args:
        values: any shape, non-negative and finite; ``axis`` must have length ≥ 1.
        axis: the axis holding one distribution (e.g. the patches of one image).

    Returns:
        ``values`` with ``axis`` removed, float64 in [0, (n − 1)/n]; NaN where the slice is all
        zero (undefined). A float for 1-D input.

    Raises:
        MechanismError: for a negative or non-finite value, or an empty axis.
    """
    x = np.moveaxis(np.asarray(values, dtype=np.float64), axis, -1)
    n = x.shape[-1]
    if n == 0:
        raise MechanismError("the Gini coefficient needs at least one value")
    if not np.isfinite(x).all():
        raise MechanismError("the Gini coefficient got a non-finite value")
    if (x < 0).any():
        raise MechanismError("the Gini coefficient is defined for non-negative values only")
    ranks = np.arange(1, n + 1, dtype=np.float64)
    total = x.sum(axis=-1)
    weighted = np.sort(x, axis=-1) @ ranks
    with np.errstate(invalid="ignore", divide="ignore"):
        g = np.where(total > 0, 2.0 * weighted / (n * total) - (n + 1) / n, np.nan)
    return float(g) if g.ndim == 0 else g
