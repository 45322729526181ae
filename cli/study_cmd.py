"""``mechanism study``: categories × seeds × the conditions of SPEC §7.5, one resumable batch."""
from __future__ import annotations

from pathlib import Path

import click

from cli.options import (EPOCHS, RESAMPLES, InputSize, cache_option, device_option, no_cache_option,
                         precision_option, resolve_cache_dir)

_folder = click.Path(file_okay=False, path_type=Path)


@click.command()
@click.option("--data", "data_root", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="MVTec AD-style root: a folder of category folders.")
@click.option("--categories", default="all", show_default=True,
              help="Comma-separated categories, or all (every category under --data).")
@click.option("--seeds", default="0,1,2", show_default=True,
              help="Training seeds of every condition (claims about training need ≥ 3).")
@click.option("--epochs", type=EPOCHS, default=12, show_default=True,
              help="Training epochs per run.")
@click.option("--lambda-sweep", is_flag=True,
              help="Also train λ = 0, 0.3, 0.5, 0.7, 0.9, 1 at r = 2% (fig6).")
@click.option("--out", required=True, type=_folder, help="Study report folder (REPORT.md, tables, categories/).")
@click.option("--runs", type=_folder, default=None,
              help="Folder of the trained runs (checkpoints, logs, metrics) [default: runs/<name of --out>].")
@click.option("--n-boot", type=RESAMPLES, default=1000, show_default=True,
              help="Bootstrap resamples of every interval (0: estimates only).")
@click.option("--workers", type=click.IntRange(1, 1024), default=1, show_default=True,
              help="Parallel trainings: local processes (on CUDA one per GPU, cycling), or the "
                   "size of the --cluster job array.")
@click.option("--cluster", type=click.Choice(["slurm", "local"]), default=None,
              help="Run the trainings as a submitit job array: slurm (a Slurm cluster) or local "
                   "(submitit's local executor). Needs the [cluster] extra.")
@click.option("--cluster-option", "cluster_options", multiple=True, metavar="KEY=VALUE",
              help="A submitit executor parameter, e.g. slurm_partition=gpu, timeout_min=240, "
                   "gpus_per_node=1, cpus_per_task=8; repeatable.")
@click.option("--report-device", default=None,
              help="Device of the evaluations, analyses and reports made by this process "
                   "[default: --device]; with --cluster on a node without a GPU, e.g. cpu.")
@click.option("--input-size", type=InputSize(), default="224", show_default=True,
              help="Model input of every run in pixels: one side or HEIGHTxWIDTH, e.g. 224x544 "
                   "to keep long photographs' aspect (README: small defects on long parts).")
@click.option("--layers", default=None,
              help="Comma-separated backbone stages of every run, e.g. 2,3 for small defects "
                   "[default: BackboneConfig].")
@precision_option
@device_option
@cache_option
@no_cache_option
@click.option("--quiet", is_flag=True, help="No progress bars (step lines are still printed).")
def study(data_root, categories, seeds, epochs, lambda_sweep, out, runs, n_boot, workers, cluster,
          cluster_options, report_device, input_size, layers, precision, device, cache_dir, no_cache, quiet):
    """Train λ = 0, the tail-aware model (λ = 0.7, r = 2%), its random-k control and the r sweep
    (1%, 2%, 10%, 100%) for every category and seed, evaluate them, run the four analyses on
    every category and write REPORT.md with per-category rows and the macro mean.

    \b
    Resumable: run it again and only what is missing is trained or analysed. Examples:
      mechanism study --data data/demo --lambda-sweep --out analysis_results/mechanism
      mechanism study --data /path/to/mvtec_ad --categories all --device cuda --out analysis_results/mvtec
      mechanism study --data /path/to/mvtec_ad --device cuda --workers 15 --cluster slurm \\
          --cluster-option slurm_partition=gpu --cluster-option gpus_per_node=1 --out analysis_results/mvtec
    """
    from mechanism.data.mvtec import discover_categories
    from mechanism.pipelines.study import run_study
    from mechanism.pipelines.study_plan import StudyPlan
    from mechanism.pipelines.workers import Launch, parse_option
    from cli.options import parse_list

    found = sorted(discover_categories(data_root))
    chosen = tuple(found) if categories.strip() == "all" else parse_list(categories, "--categories", str)
    plan = StudyPlan(categories=chosen, seeds=parse_list(seeds, "--seeds"), epochs=epochs,
                     lambda_sweep=lambda_sweep, n_boot=n_boot, input_size=input_size,
                     **({"layers": parse_list(layers, "--layers")} if layers else {}),
                     **({"precision": precision} if precision else {}))
    launch = Launch(workers, cluster, tuple(parse_option(o) for o in cluster_options))
    run_study(data_root, out, runs or Path("runs") / out.name, plan, device,
              resolve_cache_dir(cache_dir, no_cache), launch, progress=not quiet, log=click.echo,
              report_device=report_device)
