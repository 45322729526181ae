"""One line of key evidence per hypothesis result — its claims with their intervals and
statuses — for the report's summary table and fig7."""
from __future__ import annotations

from mechanism.stats.evidence import Claim, Evidence


def claim_text(c: Claim) -> str:
    """``"H1.location holds: 1.16 [1.07, 1.27] < 4.18 (S = 1 × 200)"``."""
    if c.estimate is None:
        return f"{c.name} {c.status.value}: {c.reason}"
    value = f"{c.estimate:.3g}" if c.low is None or c.high is None or c.low == c.high else \
        f"{c.estimate:.3g} [{c.low:.3g}, {c.high:.3g}]"
    seeds = "" if c.n_seeds == 0 else f", S = {c.n_seeds} × {c.n_images}"
    why = f" — {c.reason}" if c.status.value == "not resolved" else ""
    return f"{c.name} {c.status.value}: {value} {c.direction} {c.threshold:.3g}{seeds}{why}"


def headline(evidence: Evidence) -> str:
    """Every claim of a hypothesis in one line."""
    return "; ".join(claim_text(c) for c in evidence.claims)
