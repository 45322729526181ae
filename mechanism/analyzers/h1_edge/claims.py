"""H1's claims (SPEC §7.3): the tail sits nearer the edges than a uniform cell, and the image
under interior tail cells has more structure. The flip control is printed beside them."""
from __future__ import annotations

from mechanism.analyzers.h1_edge.result import RATIO_THRESHOLD
from mechanism.io.text import format_p
from mechanism.stats.bootstrap import Interval
from mechanism.stats.evidence import Claim, Evidence


def evidence(tail_distance_mean: Interval, uniform_distance_mean: float, ks_p: float,
             interior_ratio: Interval | None, interior_mw_p: float | None,
             all_cells_ratio: Interval | None, n_images: int, ratio_note: str = "",
             n_seeds: int = 1) -> Evidence:
    """H1.location and H1.content of ``n_seeds`` training seeds' checkpoints on ``n_images``
    training images each (intervals over seeds × images; p-values the largest over seeds)."""
    largest = f", the largest over {n_seeds} seeds" if n_seeds > 1 else ""
    all_cells = "undefined" if all_cells_ratio is None else all_cells_ratio.format("{:.3f}")
    location = Claim.of(
        "H1.location", "mean tail edge distance (cells)", tail_distance_mean, "<",
        uniform_distance_mean, n_seeds, n_images,
        note=f"uniform expectation {uniform_distance_mean:.3f} exact; KS p = {format_p(ks_p)} "
             f"(patches as independent{largest})", p_value=ks_p)
    content = Claim.of(
        "H1.content", "gradient ratio tail / non-tail on interior cells", interior_ratio, "≥",
        RATIO_THRESHOLD, n_seeds, n_images,
        note="; ".join(n for n in (f"all cells {all_cells}",
                                   None if interior_mw_p is None else
                                   f"Mann-Whitney p = {format_p(interior_mw_p)}{largest}",
                                   ratio_note) if n),
        p_value=interior_mw_p)
    return Evidence((location, content), ())
