"""Claims, identity checks and the verdict they give (SPEC §7.1).

A **claim** is a measured quantity with a 95% interval, a threshold and a direction. It *holds*
when every value of its interval satisfies the relation, *fails* when every value satisfies the
opposite one, and is *not resolved* otherwise — an interval touching the threshold of a strict
relation (``<``, ``>``) does not hold, one touching the threshold of ``≤``/``≥`` does. A claim
about what training changes needs ``MIN_SEEDS`` training seeds; with fewer it is not resolved
whatever its interval. A claim may also require a test (its ``p_value`` below ``ALPHA``): it then
holds only when the interval holds and the test rejects.

An **identity** is a number fixed by the loss or a definition (N/k, an oracle bound): printed as
a check of expected against measured, never part of a verdict.

The **verdict** of a hypothesis: SUPPORTED when every claim holds, NOT SUPPORTED when every
claim fails, PARTIAL when some hold and some fail and none is unresolved, INCONCLUSIVE
otherwise (the reason names each unresolved claim and what would resolve it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Sequence

from mechanism.stats.bootstrap import Interval

ALPHA = 0.05             # significance level of every test (SPEC §4)
MIN_SEEDS = 3            # training seeds a claim about what training changes needs
IDENTITY_RTOL = 1e-6     # relative agreement an identity check needs


class Verdict(str, Enum):
    """A hypothesis verdict (SPEC §7.1)."""
    SUPPORTED = "SUPPORTED"
    PARTIAL = "PARTIAL"
    NOT_SUPPORTED = "NOT SUPPORTED"
    INCONCLUSIVE = "INCONCLUSIVE"


class Status(str, Enum):
    """What a claim's interval says."""
    HOLDS = "holds"
    FAILS = "fails"
    NOT_RESOLVED = "not resolved"


_RELATIONS = {"<": lambda v, t: v < t, "≤": lambda v, t: v <= t,
              ">": lambda v, t: v > t, "≥": lambda v, t: v >= t}
_OPPOSITE = {"<": "≥", "≤": ">", ">": "≤", "≥": "<"}


@dataclass(frozen=True)
class Claim:
    """One named claim of a hypothesis and its status (derived)."""
    name: str                  # e.g. "H7.calibration"
    quantity: str              # what is measured, e.g. "Δ tail calibration error (tail-aware − baseline)"
    estimate: float | None     # None: undefined (``note`` says why)
    low: float | None          # 95% interval; None: no interval (``note`` says why)
    high: float | None
    direction: str             # "<", "≤", ">" or "≥": the claimed side of the threshold
    threshold: float
    n_seeds: int               # training seeds behind the estimate (S)
    n_images: int              # images per seed
    about_training: bool       # a claim about what training changes (needs MIN_SEEDS seeds)
    note: str = ""             # how it was measured or why something is missing
    p_value: float | None = None   # a test the claim also needs (p < ALPHA); None: no test
    status: Status = field(init=False)
    reason: str = field(init=False)

    def __post_init__(self):
        if self.direction not in _RELATIONS:
            raise ValueError(f"claim direction must be one of {', '.join(_RELATIONS)}, got "
                             f"{self.direction!r}")
        status, reason = self._assess()
        object.__setattr__(self, "status", status)
        object.__setattr__(self, "reason", reason)

    @classmethod
    def of(cls, name: str, quantity: str, interval: Interval | None, direction: str,
           threshold: float, n_seeds: int, n_images: int, about_training: bool = False,
           note: str = "", p_value: float | None = None) -> "Claim":
        """A claim on a bootstrap ``Interval`` (None: the quantity is undefined, ``note`` why)."""
        if interval is None:
            return cls(name, quantity, None, None, None, direction, threshold, n_seeds, n_images,
                       about_training, note, p_value)
        note = "; ".join(n for n in (note, interval.note) if n)
        return cls(name, quantity, interval.estimate, interval.low, interval.high, direction,
                   threshold, n_seeds, n_images, about_training, note, p_value)

    @property
    def statement(self) -> str:
        """``"Δ tail error (…) < 0"``."""
        return f"{self.quantity} {self.direction} {self.threshold:g}"

    def _assess(self) -> tuple[Status, str]:
        if self.estimate is None or not math.isfinite(self.estimate):
            return Status.NOT_RESOLVED, f"undefined: {self.note or 'no estimate'}"
        if self.about_training and self.n_seeds < MIN_SEEDS:
            return Status.NOT_RESOLVED, f"S = {self.n_seeds} < {MIN_SEEDS} training seeds"
        if self.low is None or self.high is None:
            return Status.NOT_RESOLVED, f"no interval: {self.note or 'none computed'}"
        claimed, opposite = _RELATIONS[self.direction], _RELATIONS[_OPPOSITE[self.direction]]
        where = f"[{self.low:.4g}, {self.high:.4g}]" if self.low != self.high else f"{self.low:.4g}"
        if claimed(self.low, self.threshold) and claimed(self.high, self.threshold):
            if self.p_value is not None and not self.p_value < ALPHA:
                return Status.NOT_RESOLVED, (f"{where} {self.direction} {self.threshold:g} but the "
                                             f"test does not reject (p = {self.p_value:.3g} ≥ {ALPHA:g})")
            return Status.HOLDS, f"{where} {self.direction} {self.threshold:g}"
        if opposite(self.low, self.threshold) and opposite(self.high, self.threshold):
            return Status.FAILS, f"{where} {_OPPOSITE[self.direction]} {self.threshold:g}"
        return Status.NOT_RESOLVED, f"{where} includes {self.threshold:g}"


@dataclass(frozen=True)
class Identity:
    """A number fixed by the loss or a definition, checked: expected vs measured."""
    name: str                  # e.g. "H3.tail_gain"
    quantity: str              # what it is, with its closed form
    expected: float
    measured: float | None     # None: not measurable here (``note`` says why)
    note: str = ""
    tolerance: float = 0.0     # absolute agreement needed; 0: numerical precision (IDENTITY_RTOL)
    agrees: bool | None = field(init=False)   # within the tolerance; None when not measured

    def __post_init__(self):
        if self.measured is None:
            agrees = None
        elif self.tolerance > 0:
            agrees = abs(self.measured - self.expected) <= self.tolerance
        else:
            agrees = math.isclose(self.measured, self.expected, rel_tol=IDENTITY_RTOL, abs_tol=1e-12)
        object.__setattr__(self, "agrees", agrees)


@dataclass(frozen=True)
class Evidence:
    """The claims and identity checks of one hypothesis, and the verdict of the claims alone."""
    claims: tuple[Claim, ...]
    identities: tuple[Identity, ...]
    verdict: Verdict = field(init=False)
    reason: str = field(init=False)

    def __post_init__(self):
        verdict, reason = verdict_of(self.claims)
        object.__setattr__(self, "verdict", verdict)
        object.__setattr__(self, "reason", reason)

    def claim(self, name: str) -> Claim:
        """The claim called ``name`` (KeyError if absent)."""
        for c in self.claims:
            if c.name == name:
                return c
        raise KeyError(name)


def _resolve_hint(claim: Claim) -> str:
    if claim.estimate is None or not math.isfinite(claim.estimate):
        return "a defined estimate"
    if claim.about_training and claim.n_seeds < MIN_SEEDS:
        return f"≥ {MIN_SEEDS} training seeds"
    if claim.low is None or claim.high is None:
        return "an interval (bootstrap resamples)"
    return "a narrower interval (more seeds or images)"


def verdict_of(claims: Sequence[Claim]) -> tuple[Verdict, str]:
    """The verdict of ``claims`` with a one-line reason (SPEC §7.1)."""
    if not claims:
        return Verdict.INCONCLUSIVE, "no claim could be assessed"
    held = [c.name for c in claims if c.status is Status.HOLDS]
    failed = [c.name for c in claims if c.status is Status.FAILS]
    open_ = [c for c in claims if c.status is Status.NOT_RESOLVED]
    listed = "; ".join(f"{c.name} {c.status.value} ({c.reason})" for c in claims)
    if not open_ and not failed:
        return Verdict.SUPPORTED, f"every claim holds: {listed}"
    if not open_ and not held:
        return Verdict.NOT_SUPPORTED, f"every claim fails: {listed}"
    if not open_:
        return Verdict.PARTIAL, f"some claims hold, some fail: {listed}"
    needs = "; ".join(f"{c.name} needs {_resolve_hint(c)}" for c in open_)
    return Verdict.INCONCLUSIVE, f"{listed}. To resolve: {needs}"
