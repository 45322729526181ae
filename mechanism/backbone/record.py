"""A checkpoint's record of its backbone, and the verified rebuild of that backbone from it."""
from __future__ import annotations

from dataclasses import replace

import torch

from mechanism.backbone.model import Backbone, BackboneConfig, load_backbone
from mechanism.errors import MechanismError


def backbone_record(backbone: Backbone) -> dict:
    """What a checkpoint stores about its backbone: the config and the weights' SHA-256."""
    return {"config": backbone.cfg.to_dict(), "weights_sha256": backbone.weights_sha256}


def backbone_from_record(record: dict, device: torch.device, weights: str | None = None) -> Backbone:
    """Rebuild a checkpoint's backbone and prove it is the one the flow was trained on.

    Args:
        weights: a local weights file replacing the recorded one (e.g. on another machine).

    Raises:
        MechanismError: if the weights' SHA-256 differs from the recorded one.
    """
    try:
        cfg = BackboneConfig.from_dict(record.get("config"), "backbone.config")
    except (AttributeError, TypeError, ValueError) as e:
        raise MechanismError(f"checkpoint backbone record is malformed ({e})") from None
    if weights is not None:
        cfg = replace(cfg, weights=weights)
    backbone = load_backbone(cfg, device)
    if backbone.weights_sha256 != record.get("weights_sha256"):
        raise MechanismError(
            f"backbone weights differ from the checkpoint's (sha256 {backbone.weights_sha256[:12]}… "
            f"≠ {str(record.get('weights_sha256'))[:12]}…): the flow was trained on other features")
    return backbone
