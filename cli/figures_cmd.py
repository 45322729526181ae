"""``mechanism figures``."""
from __future__ import annotations

from pathlib import Path

import click

_folder = click.Path(file_okay=False, path_type=Path)
SWEEPS = "sweeps"   # subfolder of a results folder holding a sweep's results.csv


@click.command()
@click.option("--results", "results_dir", required=True, type=_folder,
              help="An analysis output folder: results from <DIR>/tables/{H1,H3,H4,H7}.json, sweep "
                   "runs from <DIR>/sweeps/results.csv if present; or a study folder.")
@click.option("--out", type=_folder, default=None,
              help="Folder of the figures [default: <results>/figures].")
@click.option("--sweep", "sweeps", multiple=True, type=_folder,
              help="A sweep folder holding results.csv (fig6 draws its tail_weight runs); repeatable.")
@click.option("--category", default=None,
              help="fig6's category [default: the results' category, or the λ sweep's only one].")
def figures(results_dir, out, sweeps, category):
    """Re-render figures fig1–fig8 (PNG and PDF) from saved results, recomputing nothing.

    --results is a report folder, or a study folder (mechanism study): then every
    category's report under <DIR>/categories/ is re-rendered (into <out>/<category> with --out).
    A figure whose data is missing is skipped with the reason. Every table is read (and checked)
    before any figure is drawn; each figures folder is replaced in one step.
    """
    from mechanism.errors import MechanismError
    from mechanism.pipelines.study import CATEGORIES
    categories = results_dir / CATEGORIES
    if categories.is_dir():
        reports = sorted(p for p in categories.iterdir() if (p / "tables").is_dir())
        if not reports:
            raise MechanismError(f"{categories} holds no category report")
        jobs = [(report.name + ":", _inputs(report, sweeps, category),
                 (out / report.name if out is not None else report / "figures")) for report in reports]
    else:
        jobs = [(None, _inputs(results_dir, sweeps, category),
                 out if out is not None else results_dir / "figures")]
    for title, inputs, folder in jobs:
        if title is not None:
            click.echo(title)
        _render(inputs, folder)


def _inputs(results_dir: Path, sweeps, category):
    """The ``FigureInputs`` stored in one report folder (and the extra sweeps)."""
    from mechanism.figures.render import FigureInputs
    from mechanism.report.files import read_effects, read_results
    from mechanism.sweep.results import RESULTS_FILE, read_sweep_results

    results = read_results(results_dir)
    folders = ([results_dir / SWEEPS] if (results_dir / SWEEPS / RESULTS_FILE).is_file() else []) \
        + list(sweeps)
    unique = list({folder.resolve(): folder for folder in folders}.values())
    runs = [run for folder in unique for run in read_sweep_results(folder)] if unique else None
    return FigureInputs.from_results(results, runs, category, read_effects(results_dir))


def _render(inputs, folder: Path) -> None:
    from mechanism.figures.render import render_figures
    from mechanism.io.transaction import output_folder

    with output_folder(folder) as stage:
        outcome = render_figures(inputs, stage)
    for path in outcome.written:
        click.echo(f"wrote {folder / path.relative_to(stage)}")
    for line in outcome.skipped:
        click.echo(f"skipped {line}")
    for path in outcome.removed:
        click.echo(f"removed stale {folder / path.relative_to(stage)}")
