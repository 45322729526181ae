"""Options shared by several commands, declared once."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import click

from mechanism.errors import MechanismError
from mechanism.train.config import MAX_SEED


class FiniteFloatRange(click.FloatRange):
    """``click.FloatRange`` that also refuses ``nan`` and ``inf`` (which compare as in range)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{number} is not a finite number", param, ctx)
        return number


class InputSize(click.ParamType):
    """One side (``224``: a square) or height×width (``224x544``; ``×`` also read), pixels, as
    ``(height, width)``."""
    name = "S|HxW"

    def get_metavar(self, *args, **kwargs) -> str:
        return self.name

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        from mechanism.data.images import MAX_SIDE, as_shape
        parts = value.strip().lower().replace("×", "x").split("x")
        if len(parts) > 2 or not all(p.strip().isascii() and p.strip().isdigit() for p in parts):
            self.fail(f"{value!r} is neither a side nor height×width in pixels (e.g. 224 or "
                      f"224x544)", param, ctx)
        sides = [int(p) for p in parts]
        if not all(1 <= v <= MAX_SIDE for v in sides):
            self.fail(f"{value!r}: each side must lie in [1, {MAX_SIDE}] pixels", param, ctx)
        return as_shape(sides[0] if len(sides) == 1 else tuple(sides))   # configs store (S, S) as S


SEED = click.IntRange(0, MAX_SEED)
"""Seeds of every command: numpy's and torch's generators both take 0 … 2³² − 1."""
EPOCHS = click.IntRange(1, 100_000)
BATCH = click.IntRange(1, 65_536)
FLOW_CALL_CAP = " (on a CPU a flow call takes at most CPU_FLOW_ROWS patch rows, see the README)"
"""Said after a ``--batch-size`` help: ``Detector.patch_scores`` caps the rows of a flow call."""
RESAMPLES = click.IntRange(0, 100_000)
"""Bootstrap resamples: 0 (point estimates only) to 100 000 (beyond it the draws' memory, not
the intervals, grows)."""


def compose(*decorators: Callable) -> Callable:
    """One decorator applying ``decorators`` as if stacked in this order (options keep it in --help)."""
    def apply(f: Callable) -> Callable:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f
    return apply


device_option = click.option(
    "--device", default="auto", show_default=True,
    help="auto (CUDA if available, else CPU), cpu, cuda or cuda:N.")
cache_option = click.option(
    "--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Feature cache folder [default: $MECHANISM_CACHE_DIR or ~/.cache/tailflow-mechanism/features].")
no_cache_option = click.option("--no-cache", is_flag=True,
                               help="Do not read or write the feature cache.")
backbone_weights_option = click.option(
    "--backbone-weights", default=None,
    help="Local weights file for the backbone (verified after loading; a file that does not fit "
         "is an error).")
scoring_options = compose(
    click.option("--map-score", type=click.Choice(["latent", "nll"]), default="latent",
                 show_default=True,
                 help="Per-patch score of the anomaly map: latent energy ½‖z‖²/D (FastFlow's; "
                      "localises best) or the full patch NLL (SPEC §3's map)."),
    click.option("--image-score", type=click.Choice(["top_area_mean", "top3_mean", "max", "mean"]),
                 default="top_area_mean", show_default=True,
                 help="Image score: mean of the highest patch scores covering the study's "
                      "area (3 of 196 patches: 12 on a 28×28 grid), mean of the 3 highest "
                      "(study), map maximum (anomalib), mean."))
"""``--map-score``, ``--image-score`` (literal here so that ``--help`` does not import torch;
``tests/test_scoring.py`` holds them to ``mechanism.eval.scoring``)."""
data_root_option = click.option(
    "--data", "data_root", required=True, type=click.Path(path_type=Path),
    help="MVTec AD-style root (one category folder or a folder of categories).")

precision_option = click.option(
    "--precision", type=click.Choice(["bf16", "fp32"]), default=None,
    help="Training arithmetic: bf16 runs the flow's convolutions in bfloat16 (weights, log-dets "
         "and losses stay float32), fp32 all float32, as every run made before bf16 became "
         "the default [default: bf16].")
"""``--precision`` (literal: ``tests/test_train.py`` holds it to ``TrainConfig``'s ``PRECISIONS``)."""

loss_options = compose(
    click.option("--tail-weight", type=FiniteFloatRange(0, 1), default=0.7, show_default=True,
                 help="λ ∈ [0, 1]: weight of the top-k term; 0 = mean-only baseline, 1 = pure top-k."),
    click.option("--top-k-ratio", type=FiniteFloatRange(0, 1, min_open=True), default=0.02, show_default=True,
                 help="r ∈ (0, 1]: tail share of patches per image, k = max(1, round(N·r))."),
    click.option("--selection", type=click.Choice(["topk", "random"]), default="topk",
                 show_default=True, help="Tail patches: the k hardest (topk), or k random ones (control)."))
"""``--tail-weight``, ``--top-k-ratio``, ``--selection``."""

model_options = compose(
    click.option("--epochs", type=EPOCHS, default=None, help="Training epochs [default: TrainConfig]."),
    click.option("--batch-size", type=BATCH, default=None, help="Images per step [default: TrainConfig]."),
    click.option("--lr", type=FiniteFloatRange(min=0, min_open=True), default=None, help="Peak AdamW learning rate [default: TrainConfig]."),
    precision_option,
    click.option("--backbone", default="efficientnet_lite0", show_default=True, help="timm model name."),
    backbone_weights_option,
    click.option("--layers", default=None,
                 help="Comma-separated feature stages (timm out_indices) [default: BackboneConfig]."),
    click.option("--local-avg", type=click.IntRange(0, 15), default=None,
                 help="PatchCore-style k×k local averaging of the features, 0 = off "
                      "[default: BackboneConfig]."),
    click.option("--input-size", type=InputSize(), default="224", show_default=True,
                 help="Model input in pixels: one side (a square) or HEIGHTxWIDTH, e.g. 224x544 "
                      "for BSData's 1130×460 (w×h) photographs; images and masks are resized to "
                      "it, each side a multiple of the coarsest stage's stride. Small defects on "
                      "long parts: see the README's small-defect recipe."),
    click.option("--flow-blocks", type=click.IntRange(1, 64), default=None, help="Coupling blocks [default: FlowConfig]."),
    click.option("--flow-hidden", type=click.IntRange(1, 4096), default=None,
                 help="Hidden width of the subnet(s) [default: FlowConfig]."),
    click.option("--subnets", type=click.Choice(["joint", "separate"]), default=None,
                 help="joint: one subnet per block gives log-scale and shift; separate: one each, "
                      "the design before the joint subnet [default: FlowConfig]."),
    click.option("--spatial-context/--no-spatial-context", default=None,
                 help="Give the subnet (separate: the scale subnet) a depthwise 3×3 view of the "
                      "neighbours' passive half, or keep the flow per patch [default: FlowConfig]."),
    click.option("--subnet-kernel", type=click.IntRange(1, 15), default=None,
                 help="Kernel of the subnets' convolutions: 1 per patch, 3 FastFlow-style over the "
                      "neighbours [default: FlowConfig]."))
"""Training, backbone and flow settings; ``model_configs`` turns their values into configs."""


def resolve_cache_dir(cache_dir: Path | None, no_cache: bool) -> Path | None:
    """The feature cache folder of a command: ``None`` with ``--no-cache``, else ``--cache-dir``
    or the library's default folder (``$MECHANISM_CACHE_DIR`` or ``~/.cache/…``)."""
    if no_cache:
        return None
    if cache_dir is not None:
        return cache_dir
    from mechanism.backbone.features import default_cache_dir
    return default_cache_dir()


def parse_list(text: str, what: str, kind: type = int) -> tuple:
    """``"2,3"`` → ``(2, 3)``; ``kind`` converts each item (``int`` or ``float``)."""
    try:
        values = tuple(kind(v.strip()) for v in text.split(",") if v.strip())
    except ValueError:
        raise MechanismError(f"{what} must be comma-separated {kind.__name__}s, got {text!r}") from None
    if not values:
        raise MechanismError(f"{what} is empty")
    return values


def model_configs(epochs: int | None, batch_size: int | None, lr: float | None,
                  precision: str | None, backbone: str,
                  backbone_weights: str | None, layers: str | None, local_avg: int | None,
                  input_size: int | tuple[int, int], flow_blocks: int | None, flow_hidden: int | None,
                  subnets: str | None, spatial_context: bool | None, subnet_kernel: int | None):
    """``(BackboneConfig, FlowConfig, TrainConfig)`` from the values of ``model_options``; an
    option left out keeps the config's default (the training seed too)."""
    from mechanism.backbone.model import BackboneConfig
    from mechanism.flow import FlowConfig
    from mechanism.train.config import TrainConfig

    def given(**kw):
        return {k: v for k, v in kw.items() if v is not None}

    layers = None if layers is None else parse_list(layers, "--layers")
    return (BackboneConfig(**given(name=backbone, weights=backbone_weights, layers=layers,
                                   local_avg=local_avg, input_size=input_size)),
            FlowConfig(**given(n_blocks=flow_blocks, hidden=flow_hidden, subnets=subnets,
                               subnet_kernel=subnet_kernel, spatial_context=spatial_context)),
            TrainConfig(**given(epochs=epochs, batch_size=batch_size, lr=lr, precision=precision)))
