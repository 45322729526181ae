"""H3.training's measurement: how far each good test image's NLL tail sits above its mean."""
from __future__ import annotations

import numpy as np
import torch

from mechanism.errors import MechanismError
from mechanism.stats.bootstrap import PairedStat, bootstrap


def tail_excess(nll: torch.Tensor, k: int) -> np.ndarray:
    """Per image, mean of the top-k patch NLLs − mean of all, ``(n,)`` float64 nats/dim, of
    ``nll (n, H, W)``.

    Raises:
        MechanismError: a non-finite NLL.
    """
    flat = nll.flatten(1).double()
    if not torch.isfinite(flat).all():
        raise MechanismError("the checkpoint gives non-finite NLL on good test images")
    return (flat.topk(k, dim=1).values.mean(1) - flat.mean(1)).numpy()


def paired_tail_excess(candidate: np.ndarray, baseline: np.ndarray, n_boot: int,
                       seed: int) -> PairedStat:
    """Mean tail excess of both models and candidate − baseline over the same image resamples."""
    stats = {"baseline": lambda i: float(baseline[i].mean()),
             "candidate": lambda i: float(candidate[i].mean()),
             "difference": lambda i: float(candidate[i].mean() - baseline[i].mean())}
    out = bootstrap(stats, len(candidate), n_boot, seed)
    return PairedStat(out["baseline"], out["candidate"], out["difference"])
