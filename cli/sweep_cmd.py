"""``mechanism sweep`` and ``mechanism sweep-merge``."""
from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource

from cli.options import (cache_option, data_root_option, device_option, loss_options, model_configs,
                         model_options, no_cache_option, parse_list, resolve_cache_dir,
                         scoring_options)

_SWEPT_OPTION = {"tail_weight": "tail_weight", "tail_top_k_ratio": "top_k_ratio"}
"""--param → the loss option it replaces."""


def _show_tables(tables) -> None:
    click.echo(f"\n{tables.summary.rstrip()}\n")
    click.echo(f"wrote {tables.results} ({tables.n_runs} runs), {tables.summary_md}, {tables.summary_csv}")


@click.command()
@data_root_option
@click.option("--category", "categories", multiple=True,
              help="Category to sweep; repeat for several [default: the only one in --data].")
@click.option("--param", required=True, type=click.Choice(list(_SWEPT_OPTION)),
              help="Loss setting to sweep: tail_weight (λ) or tail_top_k_ratio (r).")
@click.option("--values", required=True, help="Comma-separated values of --param, e.g. 0,0.3,0.5,0.7,0.9,1.")
@click.option("--seeds", default="0", show_default=True, help="Comma-separated training seeds.")
@loss_options
@scoring_options
@click.option("--shard", default=None,
              help="Run shard i/n of the grid only (1-based: 1 ≤ i ≤ n), e.g. $SLURM_ARRAY_TASK_ID/8 "
                   "with sbatch --array=1-8.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Sweep folder: one subfolder per run, results.csv and the summary.")
@model_options
@device_option
@cache_option
@no_cache_option
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
def sweep(ctx, data_root, categories, param, values, seeds, tail_weight, top_k_ratio, selection,
          map_score, image_score, shard, out, device, cache_dir, no_cache, quiet, **model):
    """Train and evaluate one detector per category × value × seed of a Tail-Aware Loss setting.

    \b
      mechanism sweep --data data/demo --category brick --param tail_weight \\
          --values 0,0.3,0.5,0.7,0.9,1 --seeds 0,1,2 --out runs/lambda
      mechanism sweep --data data/demo --category brick --param tail_top_k_ratio \\
          --values 0.01,0.02,0.05,0.1,0.2,0.5,1 --seeds 0,1,2 --out runs/ratio
      ... --selection random --out runs/ratio-random     (the random-k control)

    --tail-weight / --top-k-ratio fix the setting that is not swept. Each run goes to
    <out>/<category>/<param>=<value>-<selection>/seed<seed>/ (model.pt, model.log.csv,
    metrics.json); <out>/results.csv lists every finished run, summary.md and summary.csv give
    mean ± std over seeds. The backbone runs once per data set: later runs read the feature
    cache (with --no-cache, a temporary one).

    Resume: run the same command again. Finished runs are skipped, a run killed during
    evaluation is evaluated from its checkpoint, a run killed during training (which leaves no
    checkpoint) is trained again. A folder holds one setup: other training settings need
    another --out.

    Sharding: --shard i/n runs every n-th run of the grid starting at the i-th, so the n jobs of
    a cluster job array (same command, i = 1..n) run each run exactly once. Shards may share one
    --out (each rebuilds results.csv from all finished runs in it; rerun any shard at the end to
    include the last ones), or write separate folders joined with `mechanism sweep-merge`.
    """
    from mechanism.data.mvtec import category_folder
    from mechanism.device import resolve_device
    from mechanism.errors import MechanismError
    from mechanism.sweep.plan import SweepSpec, parse_shard
    from mechanism.sweep.run import run_sweep
    from mechanism.train.loss import TailLossConfig

    swept = _SWEPT_OPTION[param]
    if ctx.get_parameter_source(swept) is ParameterSource.COMMANDLINE:
        raise MechanismError(f"--{swept.replace('_', '-')} is what --param {param} sweeps: give its "
                             f"values with --values only")
    which = None if shard is None else parse_shard(shard)
    backbone_cfg, flow_cfg, train_cfg = model_configs(**model)
    spec = SweepSpec(data_root, categories or (category_folder(data_root, None)[0],), param,
                     parse_list(values, "--values", float), parse_list(seeds, "--seeds", int),
                     TailLossConfig(tail_weight, top_k_ratio, selection), backbone_cfg, flow_cfg,
                     train_cfg, image_score, map_score)

    def report(o):
        m = o.record
        features = "" if o.features_from_cache is None else \
            f" (features {'from the cache' if o.features_from_cache else 'computed'})"
        click.echo(f"{o.status:9} {o.run.folder}: Pixel AP {m['pixel_ap']:.4f}, Image AUROC "
                   f"{m['image_auroc']:.4f}, training {m['train_seconds']:.1f} s{features}")

    outcome = run_sweep(spec, out, which, resolve_device(device), resolve_cache_dir(cache_dir, no_cache),
                        progress=not quiet, on_run=report)
    _show_tables(outcome.tables)


@click.command("sweep-merge")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the merged results.csv, summary.md and summary.csv (a new one).")
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
def sweep_merge(out, sources):
    """Merge the results.csv of sweep shards run in separate folders (e.g. on other machines).

    SOURCES are the shards' sweep folders or their results.csv files. A run listed identically
    twice is kept once; one listed with different numbers, other columns, or runs of another
    setup are refused.
    """
    from mechanism.sweep.tables import merge_results

    _show_tables(merge_results(list(sources), out))
