"""The ``mechanism`` console script: a click group whose commands are thin calls into the library."""
from __future__ import annotations

import signal
import sys

import click

from mechanism.errors import MechanismError


class _Group(click.Group):
    """Turns bad input — a ``MechanismError`` from the library or a usage error from click (an
    unknown option, a value out of its range) — into one ``error:`` line on stderr and exit
    code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MechanismError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(2)

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as e:
            hint = f" (see {e.ctx.command_path} --help)" if e.ctx is not None else ""
            click.echo(f"error: {e.format_message()}{hint}", err=True)
            sys.exit(2)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _interrupt(signum: int, frame) -> None:
    """SIGTERM (``kill``, a scheduler's preemption) ends a command as Ctrl-C does: locks
    released, worker processes stopped, temporary files removed, finished results kept."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _threads(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``auto`` or a thread count ≥ 1, passed on to workers through the environment; a count
    is applied now."""
    if value is None:
        return value
    import os

    from mechanism.device import THREADS_ENV, threads_choice
    from mechanism.errors import MechanismError
    try:
        choice = threads_choice(value)
    except MechanismError:
        raise click.BadParameter(f"{value!r} is neither auto nor a thread count in [1, 1024]", ctx, param) from None
    os.environ[THREADS_ENV] = value
    if isinstance(choice, int):
        import torch
        torch.set_num_threads(choice)
    return value


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tailflow-mechanism")
@click.option("--threads", default=None, envvar="MECHANISM_THREADS", metavar="auto|N",
              callback=_threads, expose_value=False, is_eager=True,
              help="CPU threads [default: torch's, one per core]. N: exactly N (evaluation and "
                   "analyses: torch's threads; training: up to N threads, at most one per "
                   "micro-batch of 8 images, 2 at the default batch of 16). auto: training uses "
                   "the cores other processes leave idle, re-checked every epoch. Training's "
                   "numbers do not depend on the count.")
def app() -> None:
    """Train tail-aware normalizing-flow anomaly detectors and explain the Tail-Aware Loss.

    \b
    Typical session:
      mechanism data demo --out data/demo
      mechanism train --data data/demo --category brick --out runs/brick/model.pt
      mechanism evaluate --ckpt runs/brick/model.pt
      mechanism analyze --hypothesis all --ckpt runs/brick/model.pt --baseline-ckpt runs/brick0/model.pt
    """


def _register() -> None:
    from cli import (
        analyze_cmd,
        data_cmd,
        demo_cmd,
        evaluate_cmd,
        figures_cmd,
        report_cmd,
        study_cmd,
        sweep_cmd,
        train_cmd,
    )
    app.add_command(analyze_cmd.analyze)
    app.add_command(data_cmd.data)
    app.add_command(train_cmd.train)
    app.add_command(evaluate_cmd.evaluate)
    app.add_command(figures_cmd.figures)
    app.add_command(sweep_cmd.sweep)
    app.add_command(sweep_cmd.sweep_merge)
    app.add_command(report_cmd.report)
    app.add_command(demo_cmd.demo)
    app.add_command(study_cmd.study)


_register()


def main() -> None:
    sys.exit(app.main(standalone_mode=True))
