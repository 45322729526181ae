"""A contrast over several categories: each category's observed effect and their macro mean
(the plain mean over categories, SPEC §3 and §7.2).

The macro mean's interval resamples seeds and images within each category, categories fixed:
resample b's macro value is the mean over categories of each category's resample b
(``effect_draws``: the categories share resample b's draw of training seeds — seed s starts
from the same initialisation everywhere, so seed effects may correlate across categories — and
draw their images independently). Its estimate is the mean of the categories' estimates. With
S = 3 seeds a seed draw takes one of 10 multisets, so the seed part of the interval is coarse
and tends to be narrow (the bootstrap's (S − 1)/S variance factor).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mechanism.errors import MechanismError
from mechanism.eval.observed_effect import OBSERVED_METRICS, ObservedEffect
from mechanism.stats.bootstrap import Interval, PairedStat, percentile_interval


@dataclass(frozen=True)
class MacroContrast:
    """One contrast (e.g. the headline) in every category of a study, and its macro mean."""
    name: str                                   # "headline", "random_k_control", …
    baseline: str                               # the baseline condition, e.g. "λ = 0, r = 0.02, top-k"
    candidate: str
    effects: tuple[ObservedEffect, ...]         # one per category, in category order
    macro: dict[str, PairedStat] | None         # OBSERVED_METRICS keys; None: see note
    note: str = ""                              # why there is no macro mean

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(e.category for e in self.effects)


def macro_contrast(name: str, baseline: str, candidate: str, effects: list[ObservedEffect],
                   draws: list[dict[str, np.ndarray] | None], missing: dict[str, str]) -> MacroContrast:
    """The categories' ``effects`` with their ``effect_draws`` (``None`` without a bootstrap)
    and the macro mean; ``missing``: category → why it has no such contrast (then there is no
    macro mean: a mean over some categories is not the study's mean).

    Raises:
        MechanismError: effects and draws of different lengths or resample counts.
    """
    if len(effects) != len(draws):
        raise MechanismError(f"{len(effects)} effects but {len(draws)} sets of draws")
    if missing:
        why = "; ".join(f"{c}: {w}" for c, w in sorted(missing.items()))
        return MacroContrast(name, baseline, candidate, tuple(effects), None,
                             f"no macro mean: not every category has this contrast ({why})")
    if not effects:
        return MacroContrast(name, baseline, candidate, (), None, "no category has this contrast")
    with_draws = [d for d in draws if d is not None]
    if with_draws and (len(with_draws) != len(draws)
                       or len({d[OBSERVED_METRICS[0]].shape for d in with_draws}) != 1):
        raise MechanismError("the categories' draws differ in number")
    macro = {}
    for key in OBSERVED_METRICS:
        estimates = [np.mean([getattr(e.metrics[key], role).estimate for e in effects])
                     for role in ("baseline", "candidate", "difference")]
        if with_draws:
            mean_draws = np.mean([d[key] for d in with_draws], axis=0)   # (B, 3)
            macro[key] = PairedStat(*(percentile_interval(float(est), mean_draws[:, j])
                                      for j, est in enumerate(estimates)))
        else:
            macro[key] = PairedStat(*(Interval(float(est), None, None, 0.95, 0, 0,
                                               "no bootstrap requested") for est in estimates))
    return MacroContrast(name, baseline, candidate, tuple(effects), macro)


@dataclass(frozen=True)
class StudyContrasts:
    """Every contrast of a study (``tables/study.*``)."""
    categories: tuple[str, ...]
    seeds: tuple[int, ...]
    contrasts: tuple[MacroContrast, ...]
