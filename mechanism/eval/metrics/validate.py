"""Input checks shared by scoring and the metrics: finite scores, binary labels, matching shapes.

Each check raises ``MechanismError`` with one line naming the offending input; nothing is
repaired or replaced silently.
"""
from __future__ import annotations

import numpy as np

from mechanism.errors import MechanismError


def require_finite(values: np.ndarray, what: str) -> None:
    """Raise if any entry of ``values`` is NaN or ±inf, saying how many are."""
    n_bad = values.size - int(np.count_nonzero(np.isfinite(values)))
    if n_bad:
        raise MechanismError(f"{what}: {n_bad} of {values.size} values are not finite (NaN or inf)")


def as_scores(values: np.ndarray, what: str) -> np.ndarray:
    """Real, finite scores; floating arrays are returned without a copy, integers become float64."""
    arr = np.asarray(values)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer)
                                 or np.issubdtype(arr.dtype, np.floating)):
        raise MechanismError(f"{what} must be real numbers, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    require_finite(arr, what)
    return arr


def as_binary(values: np.ndarray, what: str) -> np.ndarray:
    """Labels or masks as bool; accepts bool or numbers that are all 0 or 1."""
    arr = np.asarray(values)
    if arr.dtype == bool:
        return arr
    if not np.all((arr == 0) | (arr == 1)):
        raise MechanismError(f"{what} must be binary (bool or 0/1); found other values")
    return arr.astype(bool)


def require_both_classes(labels: np.ndarray, what: str, unit: str) -> None:
    """Raise if bool ``labels`` are all False or all True: ``what`` is then undefined."""
    n_positive = int(np.count_nonzero(labels))
    if n_positive == 0 or n_positive == labels.size:
        kind = "anomalous" if n_positive else "normal"
        raise MechanismError(f"{what} is undefined: all {labels.size} {unit} are {kind}; "
                             "it needs both normal and anomalous ones")


def scores_and_labels(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check image scores ``(N,)`` and labels ``(N,)`` (0 good, 1 defective); labels as bool."""
    scores = as_scores(scores, "image scores")
    labels = as_binary(labels, "image labels")
    if scores.ndim != 1 or scores.shape != labels.shape:
        raise MechanismError(f"image scores {scores.shape} and labels {labels.shape} must both "
                             "have shape (N,)")
    return scores, labels


def maps_and_masks(maps: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check anomaly maps ``(N, H, W)`` and ground-truth masks ``(N, H, W)``; masks as bool."""
    maps = np.asarray(maps)
    masks = np.asarray(masks)
    if maps.ndim != 3 or maps.shape != masks.shape:
        raise MechanismError(f"anomaly maps {maps.shape} and masks {masks.shape} must both have "
                             "shape (N, H, W)")
    return as_scores(maps, "anomaly maps"), as_binary(masks, "masks")
