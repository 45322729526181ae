"""``mechanism analyze``."""
from __future__ import annotations

from pathlib import Path

import click

from cli.options import (BATCH, FLOW_CALL_CAP, RESAMPLES, SEED, backbone_weights_option, cache_option, device_option,
                         no_cache_option, parse_list, resolve_cache_dir)

_ckpt = click.Path(dir_okay=False, path_type=Path)


@click.command()
@click.option("--hypothesis", "hypotheses", multiple=True, required=True,
              type=click.Choice(["H1", "H3", "H4", "H7", "all"], case_sensitive=False),
              help="Which analysis; repeat the option or use all.")
@click.option("--ckpt", required=True, type=_ckpt, help="The checkpoint to analyse (tail-aware model).")
@click.option("--data", "data_root", type=click.Path(path_type=Path), default=None,
              help="Data root [default: the one recorded in the checkpoint].")
@click.option("--category", default=None, help="Category [default: the checkpoint's].")
@click.option("--baseline-ckpt", type=_ckpt, default=None,
              help="A λ = 0 checkpoint of the same data: H1, H3, H7 report baseline, candidate and "
                   "the paired difference with its interval; H3.training and H7's claims need it.")
@click.option("--selection-ckpt", type=_ckpt, default=None,
              help="H4: select tail patches with this (e.g. earlier) checkpoint instead of the "
                   "analysed one on an augmented view.")
@click.option("--reference-ckpt", type=_ckpt, default=None,
              help="H4: 'truly hard' patches from this checkpoint instead of the NLL averaged over views.")
@click.option("--sweep", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="H4: a sweep folder (results.csv): the measured Pixel AP per ratio, and its "
                   "checkpoints at r = 2%, 10% and 100% for the claims H4.performance.")
@click.option("--lambdas", default=None,
              help="H3: comma-separated λ conditions [default: 0, the checkpoint's λ, 1].")
@click.option("--split", type=click.Choice(["good", "all"]), default="good", show_default=True,
              help="H7: the good test images (calibration of the normal class), or all.")
@click.option("--no-flip-control", is_flag=True,
              help="H1: skip the flip control (the model on left–right and top–bottom flipped "
                   "images; costs two more backbone passes over the training images).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("analysis_results/mechanism"), show_default=True,
              help="Output folder; tables go to <out>/tables/<H>.{json,csv,md}.")
@click.option("--batch-size", type=BATCH, default=32, show_default=True,
              help="Images per batch" + FLOW_CALL_CAP + ".")
@click.option("--max-images", type=click.IntRange(1, 10_000_000), default=None, help="Use at most this many images per split "
              "(default: all, except H4, which runs M augmented views per image: 64).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of every random choice.")
@click.option("--bootstrap", "n_boot", type=RESAMPLES, default=1000, show_default=True,
              help="Bootstrap resamples over images for 95% intervals (0 = none).")
@device_option
@backbone_weights_option
@cache_option
@no_cache_option
@click.option("--quiet", is_flag=True, help="No progress bars.")
def analyze(hypotheses, ckpt, data_root, category, baseline_ckpt, selection_ckpt, reference_ckpt,
            sweep, lambdas, split, no_flip_control, out, batch_size, max_images, seed, n_boot,
            device, backbone_weights, cache_dir, no_cache, quiet):
    """Test the mechanism hypotheses H1, H3, H4, H7 on a trained checkpoint.

    Each hypothesis is a set of named claims with 95% intervals (SPEC §7); numbers fixed by the
    loss or a definition are printed as identity checks and never count. Prints each table with
    its claims and verdict and writes JSON, CSV and markdown tables.
    """
    from mechanism.analyzers.registry import HYPOTHESES
    from mechanism.device import resolve_device
    from mechanism.errors import MechanismError
    from mechanism.pipelines.analyze import AnalysisSettings
    from mechanism.pipelines.analyze import analyze as run_analyze
    from mechanism.report import tables

    names = HYPOTHESES if any(h.lower() == "all" for h in hypotheses) else \
        tuple(dict.fromkeys(h.upper() for h in hypotheses))
    overrides = [("H7.split", split), ("H1.flip_control", not no_flip_control)]
    if lambdas is not None and "H3" not in names:
        raise MechanismError("--lambdas sets H3's loss conditions: add --hypothesis H3 (or all)")
    if lambdas is not None:
        overrides.append(("H3.lambdas", parse_list(lambdas, "--lambdas", float)))
    settings = AnalysisSettings(seed, n_boot, batch_size, max_images, tuple(overrides))

    def show(name, result):
        click.echo(f"\n## {name}\n\n{tables.markdown(result).rstrip()}\n")

    run_analyze(ckpt, names, out, resolve_device(device), settings,
                cache_dir=resolve_cache_dir(cache_dir, no_cache), progress=not quiet,
                on_result=show, data_root=data_root, category=category,
                baseline_ckpt=baseline_ckpt, selection_ckpt=selection_ckpt,
                reference_ckpt=reference_ckpt, sweep=sweep, backbone_weights=backbone_weights)
    click.echo(f"wrote {out / 'tables'} and {out / 'manifest.json'}")
