"""``mechanism evaluate``."""
from __future__ import annotations

from pathlib import Path

import click

from cli.options import (BATCH, FLOW_CALL_CAP, backbone_weights_option, cache_option, device_option, no_cache_option,
                         resolve_cache_dir, scoring_options)


@click.command()
@click.option("--ckpt", required=True, type=click.Path(path_type=Path), help="Checkpoint (.pt).")
@click.option("--data", "data_root", type=click.Path(path_type=Path), default=None,
              help="Data root [default: the one recorded in the checkpoint].")
@click.option("--category", default=None, help="Category [default: the checkpoint's].")
@scoring_options
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the metrics as JSON.")
@click.option("--save-maps", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write anomaly maps (N, S_h, S_w) at the input size S, float32, masks, labels, scores, per-patch NLL and "
                   "map score and image paths (.npz).")
@click.option("--batch-size", type=BATCH, default=64, show_default=True,
              help="Images per flow batch" + FLOW_CALL_CAP + ".")
@device_option
@backbone_weights_option
@cache_option
@no_cache_option
@click.option("--quiet", is_flag=True, help="No progress bars.")
def evaluate(ckpt, data_root, category, map_score, image_score, json_out, save_maps, batch_size, device,
             backbone_weights, cache_dir, no_cache, quiet):
    """Image AUROC, Pixel AUROC, Pixel AP and AUPRO@0.3 of a checkpoint on a test split."""
    from mechanism.device import resolve_device
    from mechanism.eval.detector import load_detector
    from mechanism.errors import MechanismError
    from mechanism.eval.evaluate import evaluate_detector, write_evaluation
    from mechanism.io.atomic import prepare_output

    if json_out is not None and save_maps is not None and json_out.resolve() == save_maps.resolve():
        raise MechanismError(f"--json and --save-maps name one file ({json_out}): give two paths")
    for path in (json_out, save_maps):
        if path is not None:
            prepare_output(path)
    detector = load_detector(ckpt, resolve_device(device), backbone_weights)
    root = data_root if data_root is not None else detector.ckpt.data.root
    cat = category if category is not None else detector.ckpt.data.category
    ev = evaluate_detector(detector, root, cat, image_score, cache_dir=resolve_cache_dir(cache_dir, no_cache),
                           batch_size=batch_size, progress=not quiet, map_score=map_score)
    m = ev.metrics
    click.echo(f"{ev.samples[0].category}: {m.n_images} test images ({m.n_defective} defective)")
    click.echo(f"  Image AUROC  {m.image_auroc:.4f}\n  Pixel AUROC  {m.pixel_auroc:.4f}\n"
               f"  Pixel AP     {m.pixel_ap:.4f}\n  AUPRO@0.3    {m.aupro:.4f}")
    write_evaluation(ev, json_out, save_maps, {"checkpoint": str(ckpt)})
    for path in (json_out, save_maps):
        if path is not None:
            click.echo(f"wrote {path}")
