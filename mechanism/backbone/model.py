"""The frozen CNN backbone: a strictly loaded timm classifier, pruned, giving feature maps.

The classifier and its weights come from ``mechanism.backbone.weights`` (never from the
network). It is pruned after the deepest requested stage and run with timm's
``forward_intermediates`` (the same maps as ``features_only=True``; the strictly loaded module
is the one that runs).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from timm.models import FeatureInfo
from torch import nn

from mechanism.backbone.weights import PretrainedModel, load_classifier
from mechanism.data.images import as_shape, shape_text
from mechanism.errors import MechanismError
from mechanism.io.serialize import StoredConfig


@dataclass(frozen=True)
class BackboneConfig(StoredConfig):
    """Which frozen features to compute (stored in every checkpoint)."""
    name: str = "efficientnet_lite0"  # timm model name
    weights: str = "default"          # "default" (shipped Lite0), a weights file, "random" (speed only)
    layers: tuple[int, ...] = (2,)    # stages (timm out_indices), increasing; Lite0 2: /8, D 40; 3: /16, D 112
    local_avg: int = 3                # 0 = off; odd k = k×k local mean per stage (PatchCore's 3)
    input_size: int | tuple[int, int] = 224  # pixels: one side (a square) or (height, width), each
                                             # a multiple of the coarsest stage's stride; a square
                                             # given as (S, S) is stored as S

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.name:
            raise MechanismError("backbone name is empty")
        if not self.weights:
            raise MechanismError("backbone weights are empty: use default, random or a file path")
        if not self.layers or any(not isinstance(i, int) or i < 0 for i in self.layers):
            raise MechanismError(f"backbone layers must be non-negative integers, got {self.layers}")
        if list(self.layers) != sorted(set(self.layers)):
            raise MechanismError(f"backbone layers must be distinct and increasing, got {self.layers}")
        if self.local_avg != 0 and (not 3 <= self.local_avg <= 15 or self.local_avg % 2 == 0):
            raise MechanismError(f"local averaging must be 0 (off) or an odd size 3 to 15, "
                                 f"got {self.local_avg}")
        h, w = as_shape(self.input_size)
        object.__setattr__(self, "input_size", h if h == w else (h, w))

    @property
    def input_shape(self) -> tuple[int, int]:
        """``(height, width)`` of the model input in pixels."""
        return as_shape(self.input_size)


LAYOUTS = {"channels_last": torch.channels_last, "nchw": torch.contiguous_format}
"""Memory layouts the network can run in (``Backbone.set_layout``)."""


class Backbone(nn.Module):
    """Frozen feature extractor: images ``(B, 3, S_h, S_w)`` in [0, 1] RGB (S: the input shape)
    → ``(B, D, H, W)`` float32.

    Per requested stage: normalise, run the network up to the stage, optionally take the
    ``k×k`` local mean (``count_include_pad=False``); stages coarser than the first are resized
    bilinearly to its grid and all are concatenated along channels (layer2+layer3 recipe).
    Always in eval mode; no parameter requires grad. Takes ``pretrained.model`` over and prunes
    it in place after the deepest requested stage.
    """

    def __init__(self, cfg: BackboneConfig, pretrained: PretrainedModel):
        super().__init__()
        model = pretrained.model
        if not (hasattr(model, "forward_intermediates") and hasattr(model, "prune_intermediate_layers")):
            raise MechanismError(f"timm model {cfg.name} cannot return intermediate feature maps")
        n_stages = len(model.feature_info)
        if cfg.layers[-1] >= n_stages:
            raise MechanismError(f"backbone {cfg.name} has feature stages 0..{n_stages - 1}, "
                                 f"got layers {list(cfg.layers)}")
        info = FeatureInfo(copy.deepcopy(model.feature_info), cfg.layers)
        self.channels: list[int] = info.channels()      # D per stage
        self.reductions: list[int] = info.reduction()   # stride per stage, pixels per cell
        if any(side % self.reductions[-1] for side in cfg.input_shape):
            raise MechanismError(f"input size {shape_text(cfg.input_size)} is not a multiple of the "
                                 f"stride {self.reductions[-1]} of stage {cfg.layers[-1]} of {cfg.name}")
        model.prune_intermediate_layers(indices=list(cfg.layers), prune_head=True)
        self.model = model
        self.cfg = cfg
        self.weights_sha256 = pretrained.weights_sha256
        self.normalisation = {"mean": list(pretrained.mean), "std": list(pretrained.std)}
        self.register_buffer("mean", torch.tensor(pretrained.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(pretrained.std).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.train(False)
        self.set_layout("channels_last")

    def set_layout(self, layout: str) -> "Backbone":
        """Run the network in ``layout`` (a key of ``LAYOUTS``): ``channels_last``, the default,
        is oneDNN's fast layout for its convolutions (``python bench/backbone_layout.py`` times
        it against ``nchw``). Features differ between layouts in float rounding, so the feature
        cache keys on ``self.layout``."""
        if layout not in LAYOUTS:
            raise ValueError(f"unknown memory layout {layout!r}: use one of {', '.join(LAYOUTS)}")
        self.layout = layout
        self.model.to(memory_format=LAYOUTS[layout])
        return self

    def train(self, mode: bool = True) -> "Backbone":
        """Stay in eval mode whatever ``mode`` is: BatchNorm statistics must never update."""
        return super().train(False)

    @property
    def out_channels(self) -> int:
        """D: channels of the concatenated feature map."""
        return sum(self.channels)

    @property
    def device(self) -> torch.device:
        return self.mean.device

    def grid(self) -> tuple[int, int]:
        """``(H, W)`` of the feature map at the configured input size (the finest stage's grid)."""
        height, width = self.cfg.input_shape
        return height // self.reductions[0], width // self.reductions[0]

    def describe(self) -> dict:
        """Plain-typed identity of the features (for cache keys and reports)."""
        kind = self.cfg.weights if self.cfg.weights in ("default", "random") else "file"
        return {"name": self.cfg.name, "weights": kind, "weights_sha256": self.weights_sha256,
                "layers": list(self.cfg.layers), "local_avg": self.cfg.local_avg,
                "input_size": self.cfg.input_size,
                "normalisation": dict(self.normalisation)}

    def stage_maps(self, images: torch.Tensor) -> list[torch.Tensor]:
        """``images: (B, 3, S_h, S_w)`` in [0, 1] RGB, ``(S_h, S_w) = cfg.input_shape`` → one
        float32 map ``(B, C_i, S_h/r_i, S_w/r_i)`` per stage of ``cfg.layers`` (locally averaged
        if configured)."""
        height, width = self.cfg.input_shape
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, height, width):
            raise ValueError(f"backbone expects (B, 3, {height}, {width}), got {tuple(images.shape)}")
        x = ((images.float() - self.mean) / self.std).contiguous(memory_format=LAYOUTS[self.layout])
        maps = self.model.forward_intermediates(x, indices=list(self.cfg.layers),
                                                intermediates_only=True, stop_early=True)
        k = self.cfg.local_avg
        if k:
            maps = [F.avg_pool2d(m, k, stride=1, padding=k // 2, count_include_pad=False) for m in maps]
        return [m.float().contiguous() for m in maps]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images: (B, 3, S_h, S_w)`` in [0, 1] RGB → ``(B, D, H, W)`` float32: the stage maps,
        coarser ones resized bilinearly to the finest grid, concatenated over channels."""
        maps = self.stage_maps(images)
        grid = maps[0].shape[-2:]
        maps = [m if m.shape[-2:] == grid else
                F.interpolate(m, size=grid, mode="bilinear", align_corners=False) for m in maps]
        return torch.cat(maps, dim=1).float()


def load_backbone(cfg: BackboneConfig = BackboneConfig(), device: torch.device | str = "cpu") -> Backbone:
    """Build the frozen backbone described by ``cfg`` on ``device``.

    Raises:
        MechanismError: unknown model, weights that are missing or do not fit, stages out of
            range, or an input size that is not a multiple of the coarsest stride.
    """
    return Backbone(cfg, load_classifier(cfg.name, cfg.weights)).to(device)
