"""One line of key evidence per hypothesis result — its claims with their intervals and
statuses — for the report's summary table and fig7."""
from __future__ import annotations

from mechanism.stats.evidence import Claim, Evidence


def claim_text(c: Claim) -> str:
    """``"H1.location holds: 1.164 [1.066, 1.273], claimed < 4.179 (S = 1 × 200)"``: the
    measurement, then what was claimed."""
    if c.estimate is None:
        return f"{c.name} {c.status.value}: {c.reason}"
    value = f"{c.estimate:.4g}" if c.low is None or c.high is None or c.low == c.high else \
        f"{c.estimate:.4g} [{c.low:.4g}, {c.high:.4g}]"
    seeds = "" if c.n_seeds == 0 else f" (S = {c.n_seeds} × {c.n_images})"
    why = f" — {c.reason}" if c.status.value == "not resolved" else ""
    return f"{c.name} {c.status.value}: {value}, claimed {c.direction} {c.threshold:.4g}{seeds}{why}"


def headline(evidence: Evidence) -> str:
    """Every claim of a hypothesis in one line."""
    return "; ".join(claim_text(c) for c in evidence.claims)
