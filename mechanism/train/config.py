"""Optimisation settings of flow training (stored in every checkpoint)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from mechanism.errors import MechanismError

PRECISIONS = ("bf16", "fp32")
"""``bf16``: the flow's forward runs under bfloat16 autocast (its convolutions in bfloat16, the
log-scales, log-dets, NLLs, weights and optimiser state in float32); ``fp32``: all float32."""


@dataclass(frozen=True)
class TrainConfig:
    """AdamW with a cosine learning-rate schedule over all steps; the last epoch is kept."""
    epochs: int = 40              # passes over the training images
    batch_size: int = 16          # images per step
    lr: float = 1e-3              # peak learning rate
    weight_decay: float = 1e-5    # AdamW decoupled weight decay
    seed: int = 0                 # seeds parameter init, shuffling and random-k selection
    precision: str = "bf16"       # arithmetic of the training forward (``PRECISIONS``)

    def __post_init__(self):
        if self.epochs < 1:
            raise MechanismError(f"epochs must be ≥ 1, got {self.epochs}")
        if self.batch_size < 1:
            raise MechanismError(f"batch size must be ≥ 1, got {self.batch_size}")
        if not self.lr > 0:
            raise MechanismError(f"learning rate must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise MechanismError(f"weight decay must be ≥ 0, got {self.weight_decay}")
        if self.precision not in PRECISIONS:
            raise MechanismError(f"unknown training precision {self.precision!r}: use one of "
                                 f"{', '.join(PRECISIONS)}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Inverse of ``to_dict``; a dict without ``precision`` predates mixed precision and
        describes float32 training."""
        return cls(**{"precision": "fp32", **d})
