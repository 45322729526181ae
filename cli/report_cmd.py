"""``mechanism report``: every analysis, the observed effect, figures and REPORT.md in one folder."""
from __future__ import annotations

from pathlib import Path

import click

from cli.options import BATCH, FLOW_CALL_CAP, RESAMPLES, SEED, cache_option, device_option, no_cache_option, resolve_cache_dir


@click.command()
@click.option("--ckpt", required=True, type=click.Path(path_type=Path),
              help="The tail-aware checkpoint to explain.")
@click.option("--baseline-ckpt", type=click.Path(path_type=Path), default=None,
              help="The mean-only (λ = 0) checkpoint: gives the observed effect and paired tables.")
@click.option("--sweep", "sweeps", multiple=True, type=click.Path(path_type=Path),
              help="A sweep folder (with results.csv) or a folder of sweep folders; repeatable. "
                   "Gives H4's measured columns, fig6, the optimum and the random-k control.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("analysis_results/mechanism"), show_default=True,
              help="Report folder: REPORT.md, manifest.json, tables/, figures/, sweeps/.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of every random choice.")
@click.option("--bootstrap", "n_boot", type=RESAMPLES, default=1000, show_default=True,
              help="Bootstrap resamples over images for 95% intervals (0 = none).")
@click.option("--batch-size", type=BATCH, default=32, show_default=True,
              help="Images per batch" + FLOW_CALL_CAP + ".")
@device_option
@cache_option
@no_cache_option
@click.option("--quiet", is_flag=True, help="No progress bars.")
def report(ckpt, baseline_ckpt, sweeps, out, seed, n_boot, batch_size, device, cache_dir, no_cache,
           quiet):
    """Run H1, H3, H4 and H7 on CKPT, compare it with the baseline, render fig1–fig8 and write
    REPORT.md in the study's structure, saying where our results disagree with the study's."""
    from mechanism.pipelines.analyze import AnalysisSettings
    from mechanism.pipelines.report import build_report
    outcome = build_report(ckpt, out, baseline_ckpt, list(sweeps), device,
                           AnalysisSettings(seed=seed, n_boot=n_boot, batch_size=batch_size),
                           resolve_cache_dir(cache_dir, no_cache), progress=not quiet, log=click.echo)
    for line in outcome.skipped_figures:
        click.echo(f"figure not drawn: {line}")
    click.echo(f"wrote {outcome.report}")
