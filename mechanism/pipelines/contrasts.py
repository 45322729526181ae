"""Paired contrasts between training conditions of a sweep, over its seeds × test images.

A condition is ``(λ, r, selection)``; a sweep folder lists its checkpoints per condition and
seed (``results.csv``'s ``folder`` column). The contrasts of SPEC §7.3 compare two conditions on
the seeds both have: the headline (λ = 0 → the tail-aware λ, same r), the random-k control
(random-k → top-k, same λ and r) and H4's pre-registered r = 10% / 100% → 2%. Each checkpoint
is evaluated once (``Evaluations``), whatever the number of contrasts it enters.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from mechanism.eval.detector import load_detector
from mechanism.eval.evaluate import Evaluation, evaluate_detector
from mechanism.eval.observed_effect import ObservedEffect, effect_draws, observed_effect
from mechanism.sweep.plan import CHECKPOINT_FILE
from mechanism.sweep.results import read_sweep_results

Condition = tuple[float, float, str]   # (λ, r, selection)
SweepCheckpoints = dict[Condition, dict[int, Path]]   # condition → seed → checkpoint


def sweep_checkpoints(folders: Sequence[Path], category: str,
                      seeds: Sequence[int] | None = None) -> SweepCheckpoints:
    """Every finished checkpoint the sweep folders list for ``category`` (of the training
    ``seeds`` only, when given), by condition and seed (a condition trained in two sweeps counts
    once per seed: the runs are deterministic)."""
    index: SweepCheckpoints = {}
    for folder in folders:
        for run in read_sweep_results(folder):
            path = Path(folder) / run.folder / CHECKPOINT_FILE
            if run.category == category and run.folder and path.is_file() \
                    and (seeds is None or run.seed in seeds):
                index.setdefault((run.tail_weight, run.top_k_ratio, run.selection), {}) \
                    .setdefault(run.seed, path)
    return index


def describe(condition: Condition, seeds: Sequence[int] = ()) -> str:
    """``"λ = 0.7, r = 0.02, top-k (seeds 0, 1, 2)"`` (no seed list when ``seeds`` is empty)."""
    lam, r, selection = condition
    kind = "top-k" if selection == "topk" else "random-k"
    text = f"λ = {lam:g}, r = {r:g}, {kind}"
    return f"{text} (seeds {', '.join(map(str, seeds))})" if seeds else text


class Evaluations:
    """Test-split evaluations of checkpoints, each computed once."""

    def __init__(self, device: torch.device, cache_dir: Path | None, progress: bool):
        self.device, self.cache_dir, self.progress = device, cache_dir, progress
        self._done: dict[Path, Evaluation] = {}
        self._draws: dict[tuple, dict[str, np.ndarray]] = {}

    def of(self, path: Path) -> Evaluation:
        path = Path(path)
        if path not in self._done:
            det = load_detector(path, self.device)
            self._done[path] = evaluate_detector(det, det.ckpt.data.root, det.ckpt.data.category,
                                                 cache_dir=self.cache_dir, progress=self.progress)
        return self._done[path]

    def contrast(self, baseline: dict[int, Path], candidate: dict[int, Path],
                 labels: tuple[str, str], n_boot: int, seed: int) -> ObservedEffect | None:
        """Candidate − baseline over the seeds both have (None when they share none)."""
        seeds = sorted(set(baseline) & set(candidate))
        if not seeds:
            return None
        return observed_effect([self.of(baseline[s]) for s in seeds],
                               [self.of(candidate[s]) for s in seeds], *labels, n_boot=n_boot,
                               seed=seed, draws=self._paired_draws(baseline, candidate, seeds,
                                                                   n_boot, seed))

    def _paired_draws(self, baseline: dict[int, Path], candidate: dict[int, Path],
                      seeds: list[int], n_boot: int, seed: int) -> dict[str, np.ndarray] | None:
        """``effect_draws`` of these checkpoints, computed once per (pairs, n_boot, seed)."""
        if n_boot < 1:
            return None
        key = (tuple((baseline[s], candidate[s]) for s in seeds), n_boot, seed)
        if key not in self._draws:
            self._draws[key] = effect_draws([self.of(baseline[s]) for s in seeds],
                                            [self.of(candidate[s]) for s in seeds], n_boot, seed)
        return self._draws[key]

    def conditions(self, index: SweepCheckpoints, baseline: Condition, candidate: Condition,
                   n_boot: int, seed: int) -> tuple[ObservedEffect | None, str]:
        """The contrast of two sweep conditions, or None with why (also for one condition
        against itself: a difference of 0 by construction is no evidence)."""
        seeds, why = shared_seeds(index, baseline, candidate)
        if not seeds:
            return None, why
        effect = self.contrast(index[baseline], index[candidate],
                               (describe(baseline, seeds), describe(candidate, seeds)), n_boot, seed)
        return effect, ""

    def draws(self, index: SweepCheckpoints, baseline: Condition, candidate: Condition,
              n_boot: int, seed: int) -> dict[str, np.ndarray] | None:
        """``effect_draws`` of the contrast ``conditions`` computes (None where it gives none)."""
        seeds, _ = shared_seeds(index, baseline, candidate)
        if not seeds:
            return None
        return self._paired_draws(index[baseline], index[candidate], seeds, n_boot, seed)


def shared_seeds(index: SweepCheckpoints, baseline: Condition, candidate: Condition
                 ) -> tuple[list[int], str]:
    """The training seeds both conditions have, or none with why."""
    if baseline == candidate:
        return [], f"baseline and candidate are the same condition ({describe(baseline)})"
    missing = [c for c in (baseline, candidate) if c not in index]
    if missing:
        return [], f"the sweep has no checkpoints of {describe(missing[0])}"
    seeds = sorted(set(index[baseline]) & set(index[candidate]))
    return seeds, "" if seeds else "the two conditions share no training seed"
