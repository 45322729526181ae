"""What every analysis result states about its inputs, and the verdict vocabulary."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum

from mechanism.checkpoint import Checkpoint

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


def checkpoint_label(ckpt: Checkpoint) -> str:
    """How a result names its checkpoint: loss settings, category, training seed, data hash."""
    loss = ckpt.loss
    return (f"λ={loss.tail_weight:g} r={loss.top_k_ratio:g} {loss.selection} on "
            f"{ckpt.data.category} (train seed {ckpt.train.seed}, data {ckpt.data.fingerprint[:12]})")
