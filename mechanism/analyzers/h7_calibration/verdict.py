"""H7's rules: the verdict on the candidate's calibration, and whether tail training moves z
closer to N(0, 1) than the baseline."""
from __future__ import annotations

from mechanism.analyzers.context import Verdict
from mechanism.analyzers.h7_calibration.result import QQ_PARTIAL, QQ_SUPPORTED, TAIL_SUPPORTED
from mechanism.stats.bootstrap import Interval


def verdict(qq_correlation: float, tail_error: float) -> tuple[Verdict, str]:
    """SPEC §4 H7 rule on the candidate's (finite) QQ r and tail error, with a one-line reason."""
    qq = f"QQ r = {qq_correlation:.4f}"
    tail = f"tail error {tail_error:.3f}"
    if qq_correlation >= QQ_SUPPORTED and tail_error <= TAIL_SUPPORTED:
        return Verdict.SUPPORTED, f"{qq} ≥ {QQ_SUPPORTED} and {tail} ≤ {TAIL_SUPPORTED:.2f}"
    if qq_correlation >= QQ_SUPPORTED:
        return Verdict.PARTIAL, f"{qq} ≥ {QQ_SUPPORTED} but {tail} > {TAIL_SUPPORTED:.2f}"
    if qq_correlation >= QQ_PARTIAL:
        return Verdict.PARTIAL, f"{qq} ≥ {QQ_PARTIAL} but < {QQ_SUPPORTED} ({tail})"
    return Verdict.NOT_SUPPORTED, f"{qq} < {QQ_PARTIAL} ({tail})"


def tail_training_closer(difference: Interval) -> tuple[bool | None, str]:
    """Does tail training move z closer to N(0, 1)? ``difference`` is the tail-error
    difference candidate − baseline; ``CLOSER_RULE`` decides. ``None`` when it has no interval."""
    text = f"tail-error difference (candidate − baseline) {difference.format('{:.4f}')}"
    if difference.low is None or difference.high is None:
        why = difference.note or "no interval"
        return None, f"{text} has no bootstrap interval ({why})"
    if difference.high < 0:
        return True, f"{text} lies below 0"
    if difference.low > 0:
        return False, f"{text} lies above 0: tail training moves the tails away from N(0, 1)"
    return False, f"{text} includes 0"
