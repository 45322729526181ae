"""What every analysis result states about its inputs, and the verdict vocabulary."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum

ALPHA = 0.05  # significance level of every test (SPEC §4)


class Verdict(str, Enum):
    """A hypothesis verdict (SPEC §4 rules)."""
    SUPPORTED = "SUPPORTED"
    PARTIAL = "PARTIAL"
    NOT_SUPPORTED = "NOT SUPPORTED"


@dataclass(frozen=True)
class AnalysisContext:
    """The exact inputs of one analysis run (printed and stored with every result)."""
    checkpoint: str        # checkpoint path as given
    category: str          # data category
    split: str             # "train", "test" or "test/good"
    n_images: int          # images used
    grid_h: int            # H of the patch grid
    grid_w: int            # W of the patch grid
    n_patches: int         # N = H·W
    k: int                 # tail patches per image, max(1, round(N·r))
    top_k_ratio: float     # r of the checkpoint's loss (or the analysis' override)
    seed: int              # seed of every random choice in the analysis
    n_boot: int            # bootstrap resamples (0 = none)

    def to_dict(self) -> dict:
        return asdict(self)
