"""The Tail-Aware Loss (SPEC §2), one code path for every λ and selection rule.

    L = (1 − λ) · mean_{all N patches} NLL  +  λ · mean_{k selected patches} NLL
    k = max(1, round(N · r))

Selection is per image, then the loss is averaged over the batch. ``topk`` selects the k
highest-NLL patches (the study's loss); ``random`` selects k uniformly random patches per image
(a control with the same gradient magnitude but no preference for hard patches).
λ = 0 is the mean-only baseline, λ = 1 pure top-k.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from mechanism.errors import MechanismError
from mechanism.io.serialize import StoredConfig

SELECTIONS = ("topk", "random")


def tail_k(n_patches: int, ratio: float) -> int:
    """``k = max(1, round(N · r))`` with Python's round (196·0.02 → 4, 196·0.2 → 39)."""
    return max(1, round(n_patches * ratio))


@dataclass(frozen=True)
class TailLossConfig(StoredConfig):
    """Tail-Aware Loss settings (stored in every checkpoint)."""
    tail_weight: float = 0.7      # λ ∈ [0, 1]: weight of the top-k term
    top_k_ratio: float = 0.02     # r ∈ (0, 1]: share of patches per image in the tail
    selection: str = "topk"       # "topk" (hardest patches) or "random" (control)

    def __post_init__(self):
        if not 0.0 <= self.tail_weight <= 1.0:
            raise MechanismError(f"tail weight λ must lie in [0, 1], got {self.tail_weight}")
        if not 0.0 < self.top_k_ratio <= 1.0:
            raise MechanismError(f"top-k ratio r must lie in (0, 1], got {self.top_k_ratio}")
        if self.selection not in SELECTIONS:
            raise MechanismError(f"unknown tail selection {self.selection!r}: use one of {SELECTIONS}")


def select_tail(nll: torch.Tensor, k: int, selection: str = "topk",
                generator: torch.Generator | None = None,
                keys: torch.Tensor | None = None) -> torch.Tensor:
    """Flat patch indices ``(B, k)`` of each image's tail.

    Args:
        nll: ``(B, H, W)`` per-patch NLL.
        k: patches per image.
        selection: ``topk`` or ``random``; ``random`` takes the k largest of ``keys``
            ``(B, H·W)``, by default uniform draws from ``generator`` (on the CPU).
    """
    flat = nll.flatten(1)
    if selection == "topk":
        return flat.topk(k, dim=1).indices
    if selection == "random":
        keys = torch.rand(flat.shape, generator=generator) if keys is None else keys
        return keys.topk(k, dim=1).indices.to(flat.device)
    raise MechanismError(f"unknown tail selection {selection!r}: use one of {SELECTIONS}")


def per_image_loss(nll: torch.Tensor, cfg: TailLossConfig, generator: torch.Generator | None = None,
                   keys: torch.Tensor | None = None) -> torch.Tensor:
    """Each image's Tail-Aware Loss ``(B,)`` from per-patch NLLs ``(B, H, W)`` (nats per
    dimension); ``generator`` or ``keys`` as in ``select_tail``."""
    flat = nll.flatten(1)
    k = tail_k(flat.shape[1], cfg.top_k_ratio)
    mean_term = flat.mean(dim=1)
    tail_term = flat.gather(1, select_tail(nll, k, cfg.selection, generator, keys)).mean(dim=1)
    return (1.0 - cfg.tail_weight) * mean_term + cfg.tail_weight * tail_term


def tail_aware_loss(nll: torch.Tensor, cfg: TailLossConfig,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """The scalar loss for a batch of per-patch NLLs ``(B, H, W)`` (nats per dimension)."""
    return per_image_loss(nll, cfg, generator).mean()


def loss_shares(cfg: TailLossConfig, batch: int, n_patches: int,
                generator: torch.Generator | None = None
                ) -> Callable[[torch.Tensor, slice], torch.Tensor]:
    """The Tail-Aware Loss of a batch of ``batch`` images, ``n_patches`` each, in shares of its
    parts: ``share(nll, images)`` is the share of the images ``images`` (a slice of the batch)
    with NLLs ``(b, H, W)`` — their per-image losses summed, divided by ``batch`` — and the
    shares of the parts add up to ``tail_aware_loss``. ``random`` selection's keys are drawn
    here for the whole batch, the draws ``tail_aware_loss`` makes from ``generator``, so the
    shares may be computed on any thread, in any order."""
    keys = torch.rand((batch, n_patches), generator=generator) if cfg.selection == "random" else None

    def share(nll: torch.Tensor, images: slice) -> torch.Tensor:
        return per_image_loss(nll, cfg, keys=None if keys is None else keys[images]).sum() / batch

    return share
