"""A metric over training seeds: mean, sample standard deviation and count."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class MetricSummary:
    """A metric over training seeds: mean, sample std (ddof = 1; ``None`` for one seed), count."""
    mean: float
    std: float | None
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> "MetricSummary":
        """The summary of one value per seed (at least one)."""
        x = np.asarray(values, dtype=np.float64)
        if x.size == 0:
            raise ValueError("a metric summary needs at least one value")
        return cls(float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else None, int(x.size))

    def format_percent(self) -> str:
        """``"55.80 ± 1.20% (n = 3)"``, or ``"55.80% (n = 1)"`` without a std."""
        if self.std is None:
            return f"{100 * self.mean:.2f}% (n = {self.n})"
        return f"{100 * self.mean:.2f} ± {100 * self.std:.2f}% (n = {self.n})"
