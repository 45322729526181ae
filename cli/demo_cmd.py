"""``mechanism demo``: the whole study on the embedded demo set, one command."""
from __future__ import annotations

from pathlib import Path

import click

from cli.options import EPOCHS, cache_option, device_option, no_cache_option, precision_option, resolve_cache_dir


@click.command()
@click.option("--quick", is_flag=True,
              help="Smoke run of every step on a tiny data set (about a minute); numbers mean nothing.")
@click.option("--data", "data_root", type=click.Path(path_type=Path), default=None,
              help="Demo data folder, generated if missing [default: data/demo, data/demo-quick with --quick].")
@click.option("--runs", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Sweep folder of the trained runs [default: runs/demo, runs/demo-quick with --quick].")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Report folder [default: analysis_results/demo, analysis_results/demo-quick "
                   "with --quick].")
@click.option("--category", default=None, help="Demo category: brick, grass or gravel [default: grass].")
@click.option("--epochs", type=EPOCHS, default=None, help="Training epochs per run [default: 12; 2 with --quick].")
@precision_option
@device_option
@cache_option
@no_cache_option
@click.option("--workers", type=click.IntRange(1, 1024), default=None,
              help="Parallel trainings: local processes sharing the CPU's threads, or one per "
                   "GPU [default: on CUDA one per GPU, at most 2 (1 with --device cuda:N); on "
                   "a CPU one per 2 usable CPUs (a training keeps at most 2 threads busy at its "
                   "batch of 16), at least 1 and at most 2 (each worker holds about 1 GiB), 1 "
                   "with --threads N; run in this process when 1 (on 2 CPUs the whole demo "
                   "peaked at 1.77 GiB in one run, README); 1 with --quick].")
@click.option("--quiet", is_flag=True, help="No progress bars (step lines are still printed).")
def demo(quick, data_root, runs, out, category, epochs, precision, device, cache_dir, no_cache,
         workers, quiet):
    """A small study of one demo category: generate the data, train for three seeds the
    baseline (λ = 0), the tail-aware model (λ = 0.7, r = 2%), its random-k control and the r
    sweep (1%, 2%, 10%, 100%); run every analysis and write the report (mechanism study's
    layout). Interrupted? Run it again: finished runs are skipped."""
    from dataclasses import replace

    from mechanism.device import resolve_device
    from mechanism.pipelines.demo import QUICK, DemoPlan, default_workers, run_demo
    from mechanism.pipelines.workers import Launch
    resolve_device(device)          # a bad --device fails before the demo set is generated
    plan = QUICK if quick else DemoPlan()
    if category is not None:
        plan = replace(plan, category=category)
    if epochs is not None:
        plan = replace(plan, epochs=epochs)
    if precision is not None:
        plan = replace(plan, precision=precision)
    suffix = "-quick" if quick else ""
    outcome = run_demo(data_root or Path(f"data/demo{suffix}"), runs or Path(f"runs/demo{suffix}"),
                       out or Path(f"analysis_results/demo{suffix}"), plan, device,
                       resolve_cache_dir(cache_dir, no_cache), progress=not quiet,
                       launch=Launch(workers or (1 if quick else default_workers(device))),
                       log=click.echo)
    click.echo(f"demo finished in {outcome.seconds / 60:.1f} min: report {outcome.report}")
