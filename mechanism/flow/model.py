"""The patch flow: a stack of coupling blocks conditioned on a 2-D positional encoding."""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from mechanism.errors import MechanismError
from mechanism.io.serialize import StoredConfig
from mechanism.flow.coupling import SUBNETS, CouplingBlock, to_images, to_rows
from mechanism.flow.positional import positional_encoding_2d


@dataclass(frozen=True)
class FlowConfig(StoredConfig):
    """Architecture of the patch flow (stored in every checkpoint; one without ``subnets``
    predates the joint subnet and describes the separate design)."""
    ADDED = {"subnets": "separate"}
    n_blocks: int = 8              # number of coupling blocks
    hidden: int = 128              # hidden width of the Linear–ReLU–Linear subnet(s)
    clamp: float = 1.9             # α of the soft clamp s = α·tanh(s_raw/α)
    pos_channels: int = 32         # channels of the sin/cos positional condition (multiple of 4)
    spatial_context: bool = True   # depthwise 3×3 context of neighbours' passive half (scale subnet; joint: the subnet)
    permutation_seed: int = 0      # seed of the fixed channel permutations
    subnet_kernel: int = 1         # subnet convolutions: 1 = per patch, 3 = 3×3 over neighbours (odd)
    subnets: str = "separate"      # "separate": scale and shift subnets; "joint": one gives both (opt-in)

    def __post_init__(self):
        if not 1 <= self.n_blocks <= 64:
            raise MechanismError(f"the flow has 1 to 64 coupling blocks, got {self.n_blocks}")
        if not 1 <= self.hidden <= 4096:
            raise MechanismError(f"subnet hidden width must lie in [1, 4096], got {self.hidden}")
        if not (self.clamp > 0 and math.isfinite(self.clamp)):
            raise MechanismError(f"soft clamp α must be a finite number > 0, got {self.clamp}")
        if not 1 <= self.subnet_kernel <= 15 or self.subnet_kernel % 2 == 0:
            raise MechanismError(f"subnet kernel must be odd, 1 to 15, got {self.subnet_kernel}")
        if self.pos_channels < 4 or self.pos_channels % 4:
            raise MechanismError(f"positional channels must be a positive multiple of 4, got {self.pos_channels}")
        if self.subnets not in SUBNETS:
            raise MechanismError(f"unknown subnet design {self.subnets!r}: use one of {', '.join(SUBNETS)}")


class FlowOutput(NamedTuple):
    """``z: (B, D, H, W)`` latent; ``logdet: (B, H, W)`` per-patch log|det J| share in nats."""
    z: torch.Tensor
    logdet: torch.Tensor


class PatchFlow(nn.Module):
    """Normalizing flow on a ``(B, D, H, W)`` feature map; its grid ``(H, W)`` is fixed.

    ``forward(x)`` maps features to latents, ``inverse(z)`` maps back; both return
    ``FlowOutput`` whose ``logdet`` shares sum (over ``h, w``) to the map's log|det J|.
    """

    def __init__(self, dim: int, height: int, width: int, cfg: FlowConfig = FlowConfig()):
        super().__init__()
        self.dim, self.height, self.width, self.cfg = dim, height, width, cfg
        self.register_buffer("cond", positional_encoding_2d(cfg.pos_channels, height, width)[None])
        gen = torch.Generator().manual_seed(cfg.permutation_seed)
        self.blocks = nn.ModuleList(
            CouplingBlock(dim, cfg.pos_channels, cfg.hidden, cfg.clamp, cfg.spatial_context,
                          torch.randperm(dim, generator=gen), cfg.subnet_kernel, cfg.subnets)
            for _ in range(cfg.n_blocks))

    @property
    def patches_interact(self) -> bool:
        """Whether a patch's latent depends on other patches' features (spatial context or
        k×k subnets with k > 1); if not, the Jacobian is block-diagonal over patches."""
        return self.cfg.spatial_context or self.cfg.subnet_kernel > 1

    @property
    def separable_paths(self) -> bool:
        """Whether ``own_paths_only`` can cut every cross-patch path (true unless k×k subnets
        with k > 1 mix neighbours)."""
        return self.cfg.subnet_kernel == 1

    @contextmanager
    def own_paths_only(self):
        """Within the block, the spatial context sees detached inputs: values are unchanged, but
        every gradient path through the context is cut (its centre tap and paths that return
        through neighbours included), so patch p's input gets gradient only from p's own NLL,
        as for non-interacting patches. Needs ``separable_paths``."""
        if not self.separable_paths:
            raise ValueError("k×k subnets mix neighbouring patches: their paths cannot be separated")
        for block in self.blocks:
            block.detach_context = True
        try:
            yield self
        finally:
            for block in self.blocks:
                block.detach_context = False

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.dim, self.height, self.width):
            raise ValueError(f"flow expects (B, {self.dim}, {self.height}, {self.width}), "
                             f"got {tuple(x.shape)}")

    def _run(self, x: torch.Tensor, blocks) -> FlowOutput:
        """``x: (B, D, H, W)`` through ``blocks`` (bound ``forward`` or ``inverse``), on patch rows."""
        self._check(x)
        grid = (x.shape[0], self.height, self.width)
        rows, cond = to_rows(x), to_rows(self.cond)
        logdet = x.new_zeros(rows.shape[0])
        for block in blocks:
            rows, ld = block(rows, cond, grid)
            logdet = logdet + ld
        z = to_images(rows, grid).contiguous()
        return FlowOutput(z, logdet.view(grid))

    def forward(self, x: torch.Tensor) -> FlowOutput:
        return self._run(x, self.blocks)

    def inverse(self, z: torch.Tensor) -> FlowOutput:
        return self._run(z, [block.inverse for block in reversed(self.blocks)])


HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def latent_energy(out: FlowOutput) -> torch.Tensor:
    """Per-patch latent energy ``½‖z[:,h,w]‖² / D`` in nats per dimension, shape ``(B, H, W)``.

    The patch NLL without its log-det share and constant; FastFlow's and CFlow-AD's anomaly
    score (anomalib maps ``−exp(−energy)``, a monotone transform of it).
    """
    return 0.5 * out.z.pow(2).mean(dim=1)


def patch_nll(out: FlowOutput) -> torch.Tensor:
    """Per-patch negative log-likelihood in nats per dimension, shape ``(B, H, W)``.

    ``NLL[h,w] = (½‖z[:,h,w]‖² − logdet[h,w]) / D + ½·log(2π)`` (SPEC §1).
    """
    return latent_energy(out) - out.logdet / out.z.shape[1] + HALF_LOG_2PI


PATCH_SCORES = {"nll": patch_nll, "latent": latent_energy}
"""Per-patch anomaly scores an anomaly map can be built from, by name: ``nll`` the exact
per-patch NLL (SPEC §3, what the analyses use), ``latent`` its latent energy (FastFlow's)."""
