"""Markdown rendering of result tables (the study's layout: a header row, then value rows)."""
from __future__ import annotations

import sys
from typing import Sequence


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table; cells are rendered with ``str``.

    >>> print(markdown_table(["measurement", "value"], [["KS p-value", "1e-3"]]))
    | measurement | value |
    |---|---|
    | KS p-value | 1e-3 |
    """
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"row {row!r} has {len(row)} cells, header has {len(header)}")
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
    return "\n".join(lines)


def format_p(p: float) -> str:
    """p-values: 3 significant digits, scientific below 1e-3 (``5.43e-93``); a p that
    underflowed to 0 in double precision is written as a bound (``< 2.2e-308``)."""
    if p == 0:
        return f"< {sys.float_info.min:.1e}"
    return f"{p:.3g}" if p >= 1e-3 else f"{p:.2e}"
