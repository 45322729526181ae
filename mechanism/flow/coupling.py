"""One affine coupling block on a patch grid, in the style of FrEIA's AllInOneBlock.

Channels split into a passive half ``x1`` (passed through) and an active half ``x2``:

    s_raw, t = subnet(x1, cond, context(x1))             # one subnet, 2·|x2| outputs
    s  = α·tanh(s_raw / α)                                # soft clamp, α = ``clamp``
    y2 = x2 · exp(s) + t
    y  = permute( [x1, y2] · exp(g) + b )                 # global affine, fixed permutation

The subnet is a per-patch Linear–ReLU–Linear (1×1 convolutions) whose output halves are the
log-scale and the shift, as in AllInOneBlock and FastFlow (``subnets="joint"``). Checkpoints
written before that design use two subnets (``subnets="separate"``): ``s_raw`` from
``(x1, cond, context)``, ``t`` from ``(x1, cond)``, each with its own hidden layer; they cost
about 1.5× the multiply-adds and keep loading. With ``spatial_context`` the subnet sees a
depthwise 3×3 convolution of the neighbouring patches' *passive* halves, so patches interact
while the Jacobian stays block-triangular:
``log|det J| = Σ_{c,h,w} (s[c,h,w]) + H·W·Σ_c g[c]``, and patch ``(h, w)`` owns
``Σ_c s[c,h,w] + Σ_c g[c]``.

A block works on patch rows ``(B·H·W, D)`` (channels last): its 1×1 subnet convolutions are
then plain matrix products, and an image view ``(B, C, H, W)`` of the same memory serves the
3×3 context and k×k subnets. The condition is the same for every image, so a 1×1 subnet's
first layer multiplies it once per call, not once per image. The weights stay ``Conv2d``
parameters, so checkpoints written with the NCHW layout load and score the same.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mechanism.device import autocast_dtype

SUBNETS = ("joint", "separate")
"""``joint``: one subnet gives log-scale and shift; ``separate``: one subnet each (older checkpoints)."""


def _subnet(in_channels: int, hidden: int, out_channels: int, kernel: int = 1) -> nn.Sequential:
    """Conv–ReLU–Conv with ``kernel``×``kernel`` convolutions (1: per patch), last layer zeroed.
    1×1 convolutions only hold their weights: ``_run_subnet`` multiplies rows by them without
    calling the modules (their hooks do not fire)."""
    last = nn.Conv2d(hidden, out_channels, kernel, padding=kernel // 2)
    nn.init.zeros_(last.weight)  # the block starts as the identity map
    nn.init.zeros_(last.bias)
    return nn.Sequential(nn.Conv2d(in_channels, hidden, kernel, padding=kernel // 2),
                         nn.ReLU(inplace=True), last)


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype the subnets compute in: autocast's for float32 ``x`` where it is on (like
    autocast, float64 stays float64)."""
    autocast = autocast_dtype(x.device.type)
    return autocast if autocast is not None and x.dtype == torch.float32 else x.dtype


def to_images(rows: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    """Patch rows ``(B·H·W, C)`` as images ``(B, C, H, W)`` (a view, channels last in memory)."""
    b, h, w = grid
    return rows.view(b, h, w, rows.shape[1]).permute(0, 3, 1, 2)


def to_rows(images: torch.Tensor) -> torch.Tensor:
    """Images ``(B, C, H, W)`` as patch rows ``(B·H·W, C)``."""
    return images.permute(0, 2, 3, 1).reshape(-1, images.shape[1])


def _run_subnet(net: nn.Sequential, x1: torch.Tensor, cond: torch.Tensor,
                context: torch.Tensor | None, grid: tuple[int, int, int]) -> torch.Tensor:
    """A Conv–ReLU–Conv subnet on its input ``(x1, cond[, context])`` (channels in that order):
    ``x1`` and ``context`` patch rows ``(B·H·W, ·)``, ``cond`` the condition rows ``(H·W, P)``
    that every image shares. With 1×1 convolutions the first layer's share of the condition,
    ``W_cond·cond + bias`` ``(H·W, hidden)``, is computed once and added to every image's
    product inside the same ``baddbmm`` (under autocast the share is rounded to bfloat16 before
    it enters the product's accumulator: one rounding more than the unsplit product); the
    layers are matrix products on the rows with the same weights. k×k convolutions run on
    the grid, the condition repeated per image."""
    first, _, last = net
    b, hw = grid[0], grid[1] * grid[2]
    if first.kernel_size != (1, 1):
        parts = [x1.view(b, hw, -1), cond.expand(b, -1, -1)]
        parts += [] if context is None else [context.view(b, hw, -1)]
        return to_rows(net(to_images(torch.cat(parts, dim=2).view(b * hw, -1), grid)))
    weight, n1, n_cond = first.weight.flatten(1), x1.shape[1], cond.shape[1]
    rows, image_weight = x1, weight[:, :n1]
    if context is not None:
        rows = torch.cat([x1, context], dim=1)
        image_weight = torch.cat([image_weight, weight[:, n1 + n_cond:]], dim=1)
    cond_share = F.linear(cond, weight[:, n1:n1 + n_cond], first.bias)
    hidden = torch.baddbmm(cond_share, rows.view(b, hw, -1), image_weight.t().expand(b, -1, -1))
    return F.linear(hidden.relu_().view(b * hw, -1), last.weight.flatten(1), last.bias)


class CouplingBlock(nn.Module):
    """Invertible map of patch rows ``(B·H·W, D) → (B·H·W, D)`` (the images of a grid
    ``(B, H, W)``, row ``(b·H + h)·W + w``) with a per-patch log-det ``(B·H·W,)``.

    Args:
        dim: channels D (≥ 2).
        cond_channels: channels of the condition (positional encoding) fed to the subnet(s).
        hidden: hidden width of the subnet(s).
        clamp: α of the soft clamp on the log-scale, |s| < α.
        spatial_context: give the subnet (``separate``: the scale subnet) a depthwise 3×3 view
            of neighbours' ``x1``.
        permutation: a permutation of ``range(dim)`` applied to the output channels.
        subnet_kernel: kernel of the subnet convolutions (1: per patch; 3: FastFlow-style
            3×3 convolutions over the neighbours' ``x1``, the Jacobian stays block-triangular).
        subnets: one of ``SUBNETS``.
    """

    def __init__(self, dim: int, cond_channels: int, hidden: int, clamp: float,
                 spatial_context: bool, permutation: torch.Tensor, subnet_kernel: int = 1,
                 subnets: str = "joint"):
        super().__init__()
        if dim < 2:
            raise ValueError(f"a coupling block needs at least 2 channels, got {dim}")
        if subnets not in SUBNETS:
            raise ValueError(f"unknown subnet design {subnets!r}: use one of {SUBNETS}")
        self.passive = dim // 2
        active = dim - self.passive
        self.clamp = clamp
        self.context = (nn.Conv2d(self.passive, self.passive, 3, padding=1, groups=self.passive)
                        if spatial_context else None)
        plain_in = self.passive + cond_channels
        context_in = plain_in + (self.passive if spatial_context else 0)
        if subnets == "joint":
            self.subnet = _subnet(context_in, hidden, 2 * active, subnet_kernel)
        else:
            self.scale_net = _subnet(context_in, hidden, active, subnet_kernel)
            self.shift_net = _subnet(plain_in, hidden, active, subnet_kernel)
        self.subnets = subnets
        self.global_log_scale = nn.Parameter(torch.zeros(dim))
        self.global_shift = nn.Parameter(torch.zeros(dim))
        self.register_buffer("permutation", permutation.clone())
        self.register_buffer("inverse_permutation", torch.argsort(permutation))
        self.detach_context = False   # the context sees detached inputs (``PatchFlow.own_paths_only``)

    def _scale_shift(self, x1: torch.Tensor, cond: torch.Tensor,
                     grid: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-scale ``s`` and shift ``t`` ``(B·H·W, |x2|)`` from the passive rows ``x1`` and the
        condition rows ``cond: (H·W, P)``, in ``x1``'s dtype."""
        x1c = x1.to(_compute_dtype(x1))                  # one cast of the passive half
        cond = cond.to(x1c.dtype)
        context = None
        if self.context is not None:
            seen = to_images(x1c.detach() if self.detach_context else x1c, grid)
            context = to_rows(self.context(seen))
        if self.subnets == "joint":
            s_raw, t = _run_subnet(self.subnet, x1c, cond, context, grid).chunk(2, dim=1)
        else:
            s_raw = _run_subnet(self.scale_net, x1c, cond, context, grid)
            t = _run_subnet(self.shift_net, x1c, cond, None, grid)
        # under autocast the subnets answer in bfloat16; clamp, exp and log-det stay in x's dtype
        s_raw, t = s_raw.to(x1.dtype), t.to(x1.dtype)
        return self.clamp * torch.tanh(s_raw / self.clamp), t

    def _global_logdet(self) -> torch.Tensor:
        return self.global_log_scale.sum()

    def forward(self, x: torch.Tensor, cond: torch.Tensor,
                grid: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``x: (B·H·W, D)`` patch rows, ``cond: (H·W, P)`` → ``(y (B·H·W, D), logdet (B·H·W,))``."""
        x1, x2 = x[:, :self.passive], x[:, self.passive:]
        s, t = self._scale_shift(x1, cond, grid)
        y = torch.cat([x1, torch.addcmul(t, x2, torch.exp(s))], dim=1)
        y = torch.addcmul(self.global_shift, y, torch.exp(self.global_log_scale))
        return y.index_select(1, self.permutation), s.sum(dim=1) + self._global_logdet()

    def inverse(self, y: torch.Tensor, cond: torch.Tensor,
                grid: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact inverse of ``forward``; the log-det returned is that of the inverse map."""
        y = y.index_select(1, self.inverse_permutation)
        y = (y - self.global_shift) * torch.exp(-self.global_log_scale)
        x1, y2 = y[:, :self.passive], y[:, self.passive:]
        s, t = self._scale_shift(x1, cond, grid)
        x = torch.cat([x1, (y2 - t) * torch.exp(-s)], dim=1)
        return x, -(s.sum(dim=1) + self._global_logdet())
