"""H3.training's measurement: how far each good test image's NLL tail sits above its mean."""
from __future__ import annotations

import numpy as np
import torch

from mechanism.errors import MechanismError
from mechanism.stats.bootstrap import PairedStat, seed_mean, two_stage_bootstrap


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


def paired_tail_excess(pairs: list[tuple[np.ndarray, np.ndarray]], n_boot: int,
                       seed: int) -> PairedStat:
    """Mean tail excess of both roles and candidate − baseline from per-image values
    ``(candidate (n,), baseline (n,))`` of each training seed on the same images: the mean over
    seeds, with a two-stage bootstrap over seeds × images (images crossed with seeds, the same
    resample for both roles)."""
    def mean_of(pick):
        return seed_mean([lambda i, c=c, b=b: float(pick(c, b)[i].mean()) for c, b in pairs])

    stats = {"baseline": mean_of(lambda c, b: b), "candidate": mean_of(lambda c, b: c),
             "difference": mean_of(lambda c, b: c - b)}
    out = two_stage_bootstrap(stats, [len(c) for c, _ in pairs], n_boot, seed, shared_images=True)
    return PairedStat(out["baseline"], out["candidate"], out["difference"])
