"""The evidence block every hypothesis table ends with: its claims, its identity checks (never
evidence) and the verdict of the claims (SPEC §7.1)."""
from __future__ import annotations

from mechanism.io.text import markdown_table
from mechanism.report.tables.rows import measurement_row
from mechanism.stats.evidence import Claim, Evidence, Identity

CHECK_WORDS = {True: "agrees", False: "differs", None: "not measured"}   # Identity.agrees in words


def _value(claim: Claim) -> str:
    if claim.estimate is None:
        return "—"
    if claim.low is None or claim.high is None or claim.low == claim.high:
        return f"{claim.estimate:.4g}"
    return f"{claim.estimate:.4g} [{claim.low:.4g}, {claim.high:.4g}]"


def _claim_row(c: Claim) -> list[str]:
    return [f"`{c.name}`", f"{c.quantity} {c.direction} {c.threshold:.4g}", _value(c),
            f"{c.n_seeds} × {c.n_images}", f"**{c.status.value}** ({c.reason})"]


def _identity_row(i: Identity) -> list[str]:
    measured = "—" if i.measured is None else f"{i.measured:.6g}"
    check = CHECK_WORDS[i.agrees]
    check = f"**{check}**" if i.agrees is False else check
    return [f"`{i.name}`", i.quantity, f"{i.expected:.6g}", measured,
            check + (f" ({i.note})" if i.note else "")]


def markdown(ev: Evidence) -> str:
    """Claims table, identity table (when any) and the verdict line."""
    parts = [markdown_table(["claim", "statement", "estimate [95% CI]", "seeds × images", "status"],
                            [_claim_row(c) for c in ev.claims]), ""]
    if ev.identities:
        parts += ["Identity checks (fixed by the loss or a definition; printed, never evidence):", "",
                  markdown_table(["identity", "quantity", "expected", "measured", "check"],
                                 [_identity_row(i) for i in ev.identities]), ""]
    parts.append(f"**Verdict: {ev.verdict.value}** — {ev.reason}")
    return "\n".join(parts)


def csv_rows(ev: Evidence) -> list[dict]:
    """``claim:<name>`` rows (estimate and interval, status in the detail), ``identity:<name>``
    rows (measured, expected in the detail) and the verdict row."""
    rows = [{**measurement_row(f"claim:{c.name}", c.estimate,
                               f"{c.statement}; S = {c.n_seeds}, {c.n_images} images; "
                               f"{c.status.value}: {c.reason}"), "ci_low": c.low, "ci_high": c.high}
            for c in ev.claims]
    rows += [measurement_row(f"identity:{i.name}", i.measured,
                             f"{i.quantity}; expected {i.expected:.10g}; {CHECK_WORDS[i.agrees]}"
                             + (f"; {i.note}" if i.note else ""))
             for i in ev.identities]
    rows.append(measurement_row("verdict", ev.verdict.value, ev.reason))
    return rows
