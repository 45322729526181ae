"""The tables of every result: its markdown and its CSV rows, one module per result type.

``markdown(result)`` and ``csv_rows(result)`` dispatch on the result's type to
``report/tables/h1.py``, ``h3.py``, ``h4.py``, ``h7.py``, ``observed_effect.py`` or ``study.py``; each module
names the type it renders as ``RESULT`` and computes nothing.
"""
from __future__ import annotations

from types import ModuleType

from mechanism.report.tables import h1, h3, h4, h7, observed_effect, study

_RENDERERS: dict[type, ModuleType] = {m.RESULT: m for m in (h1, h3, h4, h7, observed_effect, study)}


def _renderer(result) -> ModuleType:
    try:
        return _RENDERERS[type(result)]
    except KeyError:
        raise TypeError(f"no table renders a {type(result).__name__}") from None


def markdown(result) -> str:
    """The result's markdown: its table(s), verdict and context."""
    return _renderer(result).markdown(result)


def csv_rows(result) -> list[dict]:
    """The result's CSV rows (dicts of one row each; columns in order of first appearance)."""
    return _renderer(result).csv_rows(result)
