"""H3's measurement: per-patch gradient norms of the Tail-Aware Loss, reduced to per-image sums."""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from mechanism.errors import MechanismError
from mechanism.flow import PatchFlow, patch_nll
from mechanism.stats.inequality import gini
from mechanism.train.loss import TailLossConfig, select_tail, tail_aware_loss, tail_k


class PatchGradients(NamedTuple):
    """Per-patch gradient norms of one batch under each condition."""
    norms: dict[float, torch.Tensor]   # λ → (B, H, W) float32 ‖∂L_b/∂x_b[:, h, w]‖₂
    tail: torch.Tensor                 # (B, H, W) bool, each image's top-k patches by NLL


@torch.enable_grad()
def patch_gradients(flow: PatchFlow, features: torch.Tensor, lambdas: Sequence[float],
                    top_k_ratio: float) -> PatchGradients:
    """Each image's per-patch gradient norm of its own Tail-Aware Loss, for every λ.

    One forward pass, then one backward pass to the input for each end point λ = 0 and λ = 1
    that is needed, of ``B · tail_aware_loss`` (= the sum of the per-image losses). The loss is
    linear in λ for a fixed tail, so ``∂L_λ/∂x = (1 − λ)·∂L_0/∂x + λ·∂L_1/∂x`` exactly: any
    number of conditions costs at most two backward passes. When the flow's patches do not
    interact, patch p's NLL depends on ``x[:, p]`` alone, so its loss gradient is
    ``((1 − λ)/N + λ·[p ∈ tail]/k)·∂NLL_p/∂x_p``: one backward pass of ``Σ NLL`` serves every λ.
    The flow's mode is left as it is (eval for a loaded detector).

    Args:
        flow: the patch flow.
        features: ``(B, D, H, W)`` flow input on the flow's device.
        lambdas: conditions λ ∈ [0, 1].
        top_k_ratio: r; ``k = max(1, round(N·r))``.

    Raises:
        MechanismError: if a patch NLL is not finite (the tail would be undefined).
    """
    x = features.detach().clone().requires_grad_(True)
    nll = patch_nll(flow(x))
    if not torch.isfinite(nll).all():
        bad = int((~torch.isfinite(nll)).flatten(1).any(1).sum())
        raise MechanismError(f"the flow gives non-finite patch NLLs on {bad} of {len(nll)} "
                             "images: the tail and its gradient are undefined")
    k = tail_k(nll[0].numel(), top_k_ratio)
    tail = torch.zeros_like(nll, dtype=torch.bool).flatten(1)
    tail.scatter_(1, select_tail(nll.detach(), k, "topk"), True)
    lambdas = [float(lam) for lam in lambdas]
    if not flow.patches_interact:
        (grad,) = torch.autograd.grad(nll.sum(), x)
        norm, in_tail = grad.norm(dim=1), tail.view_as(nll).to(grad.dtype)
        return PatchGradients({lam: norm * ((1.0 - lam) / nll[0].numel() + lam * in_tail / k)
                               for lam in lambdas}, tail.view_as(nll))
    ends = [end for end, needed in ((0.0, any(lam < 1 for lam in lambdas)),
                                    (1.0, any(lam > 0 for lam in lambdas))) if needed]
    end_grads = {}
    for i, end in enumerate(ends):
        loss = len(x) * tail_aware_loss(nll, TailLossConfig(end, top_k_ratio, "topk"))
        (end_grads[end],) = torch.autograd.grad(loss, x, retain_graph=i < len(ends) - 1)
    norms = {}
    for lam in lambdas:
        grad = end_grads[lam] if lam in end_grads else \
            (1.0 - lam) * end_grads[0.0] + lam * end_grads[1.0]
        norms[lam] = grad.norm(dim=1)
    return PatchGradients(norms, tail.view_as(nll))


@dataclass(frozen=True)
class ConditionSums:
    """One model under one λ: per-image sufficient statistics of its gradient maps.

    Statistics take resampled image indices ``idx`` ``(n,)`` (with repeats; ``arange(n)``
    for the data itself) and return NaN where undefined (a zero denominator).
    """
    tail_weight: float         # λ
    k: int                     # tail patches per image
    n_patches: int             # N
    tail_sum: np.ndarray       # (n,) float64 Σ g over the image's k tail patches
    nontail_sum: np.ndarray    # (n,) float64 Σ g over its N − k other patches
    gini: np.ndarray           # (n,) float64 Gini of the image's g; NaN: all-zero map
    map_sum: np.ndarray        # (H, W) float64 Σ over images of g

    def tail_mean(self, idx: np.ndarray) -> float:
        return float(self.tail_sum[idx].sum() / (len(idx) * self.k))

    def nontail_mean(self, idx: np.ndarray) -> float:
        return float(self.nontail_sum[idx].sum() / (len(idx) * (self.n_patches - self.k)))

    def ratio(self, idx: np.ndarray) -> float:
        tail, nontail = self.tail_mean(idx), self.nontail_mean(idx)
        return tail / nontail if nontail > 0 else float("nan")

    def nontail_share(self, idx: np.ndarray) -> float:
        """Share of the gradient norm mass on non-tail patches (NaN when all g are 0)."""
        tail, nontail = self.tail_sum[idx].sum(), self.nontail_sum[idx].sum()
        return float(nontail / (tail + nontail)) if tail + nontail > 0 else float("nan")

    def gini_mean(self, idx: np.ndarray) -> float:
        values = self.gini[idx]
        values = values[np.isfinite(values)]
        return float(values.mean()) if len(values) else float("nan")

    @property
    def ratio_unbounded(self) -> bool:
        """Non-tail gradient exactly 0 with a non-zero tail gradient."""
        return bool(self.nontail_sum.sum() == 0 and self.tail_sum.sum() > 0)

    def ratio_note(self) -> str:
        """Why the pooled ratio is undefined ("" when it is defined)."""
        if self.nontail_sum.sum() > 0:
            return ""
        if self.ratio_unbounded:
            return (f"non-tail gradient is exactly 0 at λ = {self.tail_weight:g}: patches do not "
                    "interact, ratio is unbounded")
        return f"every patch gradient is exactly 0 at λ = {self.tail_weight:g}: ratio undefined"

    def gini_note(self) -> str:
        """Images left out of the Gini mean ("" when none)."""
        undefined = int(np.isnan(self.gini).sum())
        if undefined == 0:
            return ""
        if undefined == len(self.gini):
            return f"Gini undefined at λ = {self.tail_weight:g}: every image's gradient map is all zero"
        return (f"Gini undefined for {undefined} of {len(self.gini)} images at λ = "
                f"{self.tail_weight:g} (all-zero gradient map); averaged over the others")


def measure(flow: PatchFlow, features: torch.Tensor, lambdas: Sequence[float], top_k_ratio: float,
            batch_size: int, progress: bool = False, desc: str = "H3 gradients"
            ) -> tuple[ConditionSums, ...]:
    """``patch_gradients`` over all images in batches, reduced to per-image sums.

    Args:
        features: ``(n, D, H, W)`` float32 (any device; batches move to the flow's device).

    Returns:
        one ``ConditionSums`` per λ, in the order of ``lambdas``.
    """
    device = next(flow.parameters()).device
    n_patches = features.shape[2] * features.shape[3]
    k = tail_k(n_patches, top_k_ratio)
    parts: dict[float, list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]] = \
        {float(lam): [] for lam in lambdas}
    for start in tqdm(range(0, len(features), batch_size), desc=desc, disable=not progress):
        grads = patch_gradients(flow, features[start:start + batch_size].to(device), lambdas,
                                top_k_ratio)
        tail = grads.tail.cpu().numpy()
        for lam, norm in grads.norms.items():
            g = norm.cpu().double().numpy()                                   # (B, H, W)
            parts[lam].append((np.where(tail, g, 0.0).sum(axis=(1, 2)),
                               np.where(tail, 0.0, g).sum(axis=(1, 2)),
                               gini(g.reshape(len(g), -1)), g.sum(axis=0)))
    return tuple(ConditionSums(lam, k, n_patches, *(np.concatenate([p[i] for p in chunks])
                                                    for i in range(3)),
                               np.sum([p[3] for p in chunks], axis=0))
                 for lam, chunks in parts.items())


class BaselineMeasurement(NamedTuple):
    """A baseline model's measurement with how to name it."""
    label: str
    tail_weight: float
    conditions: tuple[ConditionSums, ...]
