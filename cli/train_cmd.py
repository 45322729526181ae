"""``mechanism train``."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from cli.options import (SEED, cache_option, data_root_option, device_option, loss_options,
                         model_configs, model_options, no_cache_option, resolve_cache_dir)


@click.command()
@data_root_option
@click.option("--category", default=None, help="Category to train on (needed if --data has several).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Checkpoint to write (e.g. runs/brick/model.pt); the epoch log goes next to it.")
@loss_options
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Seeds initialisation, shuffling and random-k draws.")
@model_options
@device_option
@cache_option
@no_cache_option
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train(data_root, category, out, tail_weight, top_k_ratio, selection, seed, device, cache_dir,
          no_cache, quiet, **model):
    """Train a tail-aware normalizing-flow detector on the good training images.

    Features of the frozen backbone are cached on disk, so retraining on the same data never
    re-runs the backbone. The last epoch's model is saved (no model selection on test data).
    """
    from mechanism.device import resolve_device
    from mechanism.train.fit import train_detector
    from mechanism.train.loss import TailLossConfig

    loss_cfg = TailLossConfig(tail_weight, top_k_ratio, selection)
    backbone_cfg, flow_cfg, train_cfg = model_configs(**model)
    run = train_detector(data_root, category, out, backbone_cfg, flow_cfg, loss_cfg,
                         replace(train_cfg, seed=seed), resolve_device(device),
                         resolve_cache_dir(cache_dir, no_cache), progress=not quiet)
    last = run.log[-1]
    click.echo(f"saved {run.checkpoint} (epoch log {run.log_csv}); final loss {last.loss:.4f}, "
               f"mean NLL {last.mean_nll:.4f}, tail NLL {last.tail_nll:.4f} nats/dim; "
               f"features {run.feature_seconds:.1f} s"
               f"{' (cache)' if run.features_from_cache else ''}, training {run.train_seconds:.1f} s")
