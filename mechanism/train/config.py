"""Optimisation settings of flow training (stored in every checkpoint)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from mechanism.errors import MechanismError
from mechanism.io.serialize import StoredConfig

MAX_SEED = 2**32 - 1   # numpy's and torch's generators both take seeds up to this
PRECISIONS = ("bf16", "fp32")
"""``bf16``: the flow's forward runs under bfloat16 autocast (its convolutions in bfloat16, the
log-scales, log-dets, NLLs, weights and optimiser state in float32); ``fp32``: all float32."""


@dataclass(frozen=True)
class TrainConfig(StoredConfig):
    """AdamW with a cosine learning-rate schedule over all steps; the last epoch is kept (one
    stored without ``precision`` predates mixed precision and describes float32 training)."""
    ADDED = {"precision": "fp32"}
    epochs: int = 40              # passes over the training images
    batch_size: int = 16          # images per step
    lr: float = 1e-3              # peak learning rate
    weight_decay: float = 1e-5    # AdamW decoupled weight decay
    seed: int = 0                 # seeds parameter init, shuffling and random-k selection
    precision: str = "bf16"       # arithmetic of the training forward (``PRECISIONS``)

    def __post_init__(self):
        if not 1 <= self.epochs <= 100_000:
            raise MechanismError(f"epochs must lie in [1, 100000], got {self.epochs}")
        if not 1 <= self.batch_size <= 65_536:
            raise MechanismError(f"batch size must lie in [1, 65536], got {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise MechanismError(f"learning rate must be a finite number > 0, got {self.lr}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise MechanismError(f"weight decay must be a finite number ≥ 0, got {self.weight_decay}")
        if not 0 <= self.seed <= MAX_SEED:
            raise MechanismError(f"training seed must lie in [0, {MAX_SEED}], got {self.seed}")
        if self.precision not in PRECISIONS:
            raise MechanismError(f"unknown training precision {self.precision!r}: use one of "
                                 f"{', '.join(PRECISIONS)}")

