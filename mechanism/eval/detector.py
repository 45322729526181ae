"""A trained detector: the checkpoint's frozen backbone and its flow, ready to score images."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from mechanism.backbone.features import cached_features
from mechanism.backbone.model import Backbone
from mechanism.backbone.record import backbone_from_record
from mechanism.data.mvtec import Sample
from mechanism.device import resolve_device
from mechanism.errors import MechanismError
from mechanism.flow import PATCH_SCORES, PatchFlow
from mechanism.train.checkpoint import Checkpoint, load_checkpoint

CPU_BACKBONE_CHUNK = 4   # images per backbone call on a CPU: Lite0 at 224 px runs ~2-3× faster
                         # per image in chunks of 4 than of 32 (measured on 2 threads)
CPU_FLOW_ROWS = 12544    # patch rows per flow call on a CPU (16 images of 28×28): faster than
                         # whole batches of 32 (bench/flow_inference.py; cache locality the likely
                         # reason, only this budget tried), the same scores


@dataclass
class Detector:
    """Backbone + flow of one checkpoint on one device (both frozen, eval mode)."""
    ckpt: Checkpoint
    backbone: Backbone
    flow: PatchFlow
    device: torch.device

    def features(self, samples: list[Sample], cache_dir: Path | None = None,
                 progress: bool = True) -> torch.Tensor:
        """Backbone features ``(N, D, H, W)`` float32 on the CPU, through the feature cache
        folder ``cache_dir`` (``None``: no cache, the backbone always runs)."""
        return cached_features(self.backbone, samples, cache_dir, device=self.device,
                               progress=progress).features

    @torch.inference_mode()
    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """Backbone features ``(B, D, H, W)`` of images ``(B, 3, S_h, S_w)`` in [0, 1] (not cached:
        for transformed views), in chunks of ``CPU_BACKBONE_CHUNK`` on a CPU."""
        images = images.to(self.device)
        chunk = CPU_BACKBONE_CHUNK if self.device.type == "cpu" else len(images)
        return torch.cat([self.backbone(images[i:i + chunk]) for i in range(0, len(images), chunk)])

    @torch.no_grad()
    def patch_scores(self, features: torch.Tensor, names: tuple[str, ...] = ("nll",),
                     batch_size: int = 64, progress: bool = False) -> dict[str, torch.Tensor]:
        """Per-patch scores ``(N, H, W)`` float32 on the CPU, nats per dimension, by name
        (``mechanism.flow.PATCH_SCORES``), from one pass of the flow over ``batch_size`` images
        at a time (on a CPU at most ``CPU_FLOW_ROWS`` patch rows: the images are independent,
        so the scores do not depend on the split)."""
        unknown = [n for n in names if n not in PATCH_SCORES]
        if unknown:
            raise MechanismError(f"unknown patch score {unknown[0]!r}; choose one of "
                                 f"{', '.join(PATCH_SCORES)}")
        if self.device.type == "cpu":     # at most CPU_FLOW_ROWS patch rows per flow call
            batch_size = min(batch_size, max(1, CPU_FLOW_ROWS // (self.flow.height * self.flow.width)))
        out: dict[str, list[torch.Tensor]] = {n: [] for n in names}
        for start in tqdm(range(0, len(features), batch_size), desc="flow", disable=not progress):
            flow_out = self.flow(features[start:start + batch_size].to(self.device))
            for n in names:
                out[n].append(PATCH_SCORES[n](flow_out).cpu())
        return {n: torch.cat(v) for n, v in out.items()}

    def patch_nll(self, features: torch.Tensor, batch_size: int = 64,
                  progress: bool = False) -> torch.Tensor:
        """Per-patch NLL ``(N, H, W)`` in nats per dimension, float32 on the CPU."""
        return self.patch_scores(features, ("nll",), batch_size, progress)["nll"]


def load_detector(ckpt: str | Path | Checkpoint, device: torch.device | str = "cpu",
                  backbone_weights: str | None = None) -> Detector:
    """Load a checkpoint (path or object) with its verified backbone onto ``device``
    (a ``torch.device`` or a choice for ``resolve_device``: auto, cpu, cuda)."""
    device = resolve_device(device) if isinstance(device, str) else device
    if not isinstance(ckpt, Checkpoint):
        ckpt = load_checkpoint(ckpt, map_location="cpu")
    backbone = backbone_from_record(ckpt.backbone, device, backbone_weights)
    grid = (*backbone.grid(), backbone.out_channels)
    if grid != ckpt.grid:
        raise MechanismError(f"backbone gives a {grid} grid (H, W, D) but the flow expects {ckpt.grid}")
    return Detector(ckpt, backbone, ckpt.build_flow(device), device)
