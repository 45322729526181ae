"""Options shared by several commands, declared once."""
from __future__ import annotations

from pathlib import Path

import click

device_option = click.option(
    "--device", default="auto", show_default=True,
    help="auto (CUDA if available, else CPU), cpu, cuda or cuda:N.")
cache_option = click.option(
    "--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Feature cache folder [default: $MECHANISM_CACHE_DIR or ~/.cache/tailflow-mechanism/features].")
no_cache_option = click.option("--no-cache", is_flag=True,
                               help="Do not read or write the feature cache.")
backbone_weights_option = click.option(
    "--backbone-weights", default=None,
    help="Local weights file for the backbone (verified after loading; a file that does not fit "
         "is an error).")


def resolve_cache_dir(cache_dir: Path | None, no_cache: bool) -> Path | str | None:
    """``None`` (no cache), the given folder, or ``"default"`` (the library's default folder)."""
    if no_cache:
        return None
    return cache_dir if cache_dir is not None else "default"


def parse_list(text: str, what: str, kind: type = int) -> tuple:
    """``"2,3"`` → ``(2, 3)``; ``kind`` converts each item (``int`` or ``float``)."""
    try:
        values = tuple(kind(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"{what} must be comma-separated {kind.__name__}s, got {text!r}") from None
    if not values:
        raise click.BadParameter(f"{what} is empty")
    return values
