"""``mechanism train``."""
from __future__ import annotations

from pathlib import Path

import click

from cli.options import (backbone_weights_option, cache_option, device_option, no_cache_option,
                         parse_list, resolve_cache_dir)


@click.command()
@click.option("--data", "data_root", required=True, type=click.Path(path_type=Path),
              help="MVTec AD-style root (one category folder or a folder of categories).")
@click.option("--category", default=None, help="Category to train on (needed if --data has several).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Checkpoint to write (e.g. runs/brick/model.pt); the epoch log goes next to it.")
@click.option("--tail-weight", type=float, default=0.7, show_default=True,
              help="λ ∈ [0, 1]: weight of the top-k term; 0 = mean-only baseline, 1 = pure top-k.")
@click.option("--top-k-ratio", type=float, default=0.02, show_default=True,
              help="r ∈ (0, 1]: tail share of patches per image, k = max(1, round(N·r)).")
@click.option("--selection", type=click.Choice(["topk", "random"]), default="topk", show_default=True,
              help="Tail patches: the k hardest (topk), or k random ones (control).")
@click.option("--epochs", type=int, default=None, help="Training epochs [default: TrainConfig].")
@click.option("--batch-size", type=int, default=None, help="Images per step [default: TrainConfig].")
@click.option("--lr", type=float, default=None, help="Peak AdamW learning rate [default: TrainConfig].")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds initialisation, shuffling and random-k draws.")
@click.option("--backbone", default="efficientnet_lite0", show_default=True, help="timm model name.")
@backbone_weights_option
@click.option("--layers", default=None,
              help="Comma-separated feature stages (timm out_indices) [default: BackboneConfig].")
@click.option("--local-avg", type=int, default=0, show_default=True,
              help="PatchCore-style k×k local averaging of the features (0 = off, 3 = the study's).")
@click.option("--input-size", type=int, default=224, show_default=True, help="Model input side in pixels.")
@click.option("--flow-blocks", type=int, default=None, help="Coupling blocks [default: FlowConfig].")
@click.option("--flow-hidden", type=int, default=None, help="Hidden width of the subnets [default: FlowConfig].")
@click.option("--no-spatial-context", is_flag=True,
              help="Per-patch flow: no depthwise 3×3 context of the neighbours in the scale subnet.")
@device_option
@cache_option
@no_cache_option
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train(data_root, category, out, tail_weight, top_k_ratio, selection, epochs, batch_size, lr,
          seed, backbone, backbone_weights, layers, local_avg, input_size, flow_blocks, flow_hidden,
          no_spatial_context, device, cache_dir, no_cache, quiet):
    """Train a tail-aware normalizing-flow detector on the good training images.

    Features of the frozen backbone are cached on disk, so retraining on the same data never
    re-runs the backbone. The last epoch's model is saved (no model selection on test data).
    """
    from mechanism.backbone import BackboneConfig
    from mechanism.device import resolve_device
    from mechanism.flow import FlowConfig
    from mechanism.loss import TailLossConfig
    from mechanism.train import train_detector
    from mechanism.train_config import TrainConfig

    loss_cfg = TailLossConfig(tail_weight, top_k_ratio, selection)
    overrides = {k: v for k, v in dict(epochs=epochs, batch_size=batch_size, lr=lr).items()
                 if v is not None}
    train_cfg = TrainConfig(**{**TrainConfig().to_dict(), **overrides, "seed": seed})
    bb = {"name": backbone, "input_size": input_size, "local_avg": local_avg}
    if backbone_weights is not None:
        bb["weights"] = backbone_weights
    if layers is not None:
        bb["layers"] = parse_list(layers, "--layers")
    backbone_cfg = BackboneConfig.from_dict({**BackboneConfig().to_dict(), **bb})
    flow_overrides = {k: v for k, v in dict(n_blocks=flow_blocks, hidden=flow_hidden).items()
                      if v is not None}
    if no_spatial_context:
        flow_overrides["spatial_context"] = False
    flow_cfg = FlowConfig(**{**FlowConfig().to_dict(), **flow_overrides})
    run = train_detector(data_root, category, out, backbone_cfg, flow_cfg, loss_cfg, train_cfg,
                         resolve_device(device), resolve_cache_dir(cache_dir, no_cache),
                         progress=not quiet)
    last = run.log[-1]
    click.echo(f"saved {run.checkpoint} (epoch log {run.log_csv}); final loss {last.loss:.4f}, "
               f"mean NLL {last.mean_nll:.4f}, tail NLL {last.tail_nll:.4f} nats/dim; "
               f"features {run.feature_seconds:.1f} s"
               f"{' (cache)' if run.features_from_cache else ''}, training {run.train_seconds:.1f} s")
