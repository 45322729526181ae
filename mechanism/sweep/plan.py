"""A sweep's plan: one Tail-Aware Loss setting over values × seeds × categories (SPEC §6), its
runs, their folders and shards.

Folder layout of a sweep ``out`` (``SweepRunSpec.folder``)::

    out/<category>/<param>=<value>-<selection>/seed<seed>/
        model.pt          checkpoint (``CHECKPOINT_FILE``), written atomically once training finished
        model.log.csv     its per-epoch log
        metrics.json      test metrics + the run's exact configuration (``METRICS_FILE``), written
                          last, atomically
    out/results.csv, out/summary.md, out/summary.csv     (see mechanism.sweep.tables)
    out/manifest.json     (a shard writes manifest-shard<i>of<n>.json)

Shards: shard i of n (1-based, 1 ≤ i ≤ n) takes every n-th run of the plan, starting at the
i-th, so the n shards of one sweep run each planned run exactly once. Shards may write into one
shared folder (each rebuilds ``results.csv`` from every finished run folder in it) or into
separate folders, joined with ``mechanism.sweep.tables.merge_results``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence, TypeVar

from mechanism.backbone.model import BackboneConfig
from mechanism.errors import MechanismError
from mechanism.eval.scoring import DEFAULT_IMAGE_SCORE, DEFAULT_MAP_SCORE, check_scoring
from mechanism.flow import FlowConfig
from mechanism.io.serialize import from_plain, to_plain
from mechanism.sweep.results import SWEPT_COLUMN
from mechanism.train.config import MAX_SEED, TrainConfig
from mechanism.train.loss import TailLossConfig

RUN_FORMAT = "tailflow-mechanism/sweep-run"   # "format" of a metrics.json
METRICS_FILE = "metrics.json"
CHECKPOINT_FILE = "model.pt"
T = TypeVar("T")
MAX_SHARDS = 10_000
MAX_SEEDS = 100      # training seeds of one sweep or study


@dataclass(frozen=True)
class SweepRunSpec:
    """One run of a sweep: the exact configuration it trains and evaluates."""
    category: str
    param: str                  # "tail_weight" or "tail_top_k_ratio"
    loss: TailLossConfig        # holds the swept value
    backbone: BackboneConfig
    flow: FlowConfig
    train: TrainConfig          # holds the run's seed
    image_score: str
    map_score: str

    @property
    def value(self) -> float:
        """The swept setting's value (λ or r)."""
        return getattr(self.loss, SWEPT_COLUMN[self.param])

    @property
    def seed(self) -> int:
        return self.train.seed

    @property
    def folder(self) -> str:
        """``<category>/<param>=<value>-<selection>/seed<seed>`` (value with ``:g``), relative
        to the sweep folder."""
        return f"{self.category}/{self.param}={self.value:g}-{self.loss.selection}/seed{self.seed}"

    def config(self, data: dict[str, str]) -> dict:
        """Plain-typed configuration, as recorded in ``metrics.json``; ``data`` holds the
        category's training and test fingerprints."""
        return {"category": self.category, "param": self.param, "backbone": self.backbone.to_dict(),
                "flow": self.flow.to_dict(), "loss": self.loss.to_dict(), "train": self.train.to_dict(),
                "map_score": self.map_score, "image_score": self.image_score, "data": data}


@dataclass(frozen=True)
class RunConfig:
    """A run's configuration as ``metrics.json`` records it (``SweepRunSpec.config``)."""
    category: str
    param: str
    backbone: BackboneConfig
    flow: FlowConfig
    loss: TailLossConfig
    train: TrainConfig
    image_score: str
    data: dict[str, str]           # the category's training and test fingerprints
    map_score: str = "nll"         # records from before the map score was configurable: NLL map


def canonical_config(config: object) -> dict:
    """A recorded run configuration in today's form, read strictly (``from_plain``): fields
    added since it was written take the value runs without them had (flow ``subnets``
    "separate", training ``precision`` "fp32", ``map_score`` "nll").

    Raises:
        MechanismError: a missing, unknown or mistyped field, or a value out of its range
            (named by its path, e.g. ``config.train.lr``).
    """
    try:
        return to_plain(from_plain(RunConfig, config, "config"))
    except (TypeError, ValueError, MechanismError) as e:
        raise MechanismError(f"a malformed run configuration ({e})") from None


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: ``param`` over ``values`` × ``seeds`` on each of ``categories``.

    ``loss`` gives the selection and the setting that is not swept (its swept field is replaced
    per run); ``train``'s seed is replaced by each run's seed. Categories, values and seeds are
    kept sorted, so the plan does not depend on the order they were given in.

    Raises:
        MechanismError: unknown param, map score or image score; no or repeated categories, values or
            seeds (values count as equal to 6 significant digits, as in folder names); λ outside
            [0, 1]; r outside (0, 1]; a seed that is not an integer ≥ 0.
    """
    data_root: Path
    categories: tuple[str, ...]
    param: str                            # "tail_weight" (λ) or "tail_top_k_ratio" (r)
    values: tuple[float, ...]
    seeds: tuple[int, ...] = (0,)
    loss: TailLossConfig = TailLossConfig()
    backbone: BackboneConfig = BackboneConfig()
    flow: FlowConfig = FlowConfig()
    train: TrainConfig = TrainConfig()
    image_score: str = DEFAULT_IMAGE_SCORE  # one of mechanism.eval.scoring.IMAGE_SCORE_METHODS
    map_score: str = DEFAULT_MAP_SCORE      # one of mechanism.flow.PATCH_SCORES

    def __post_init__(self):
        if self.param not in SWEPT_COLUMN:
            raise MechanismError(f"unknown swept parameter {self.param!r}: use one of "
                                 f"{', '.join(SWEPT_COLUMN)}")
        check_scoring(self.map_score, self.image_score)
        values = tuple(float(v) for v in self.values)
        for v in values:
            self.run_loss(v)                  # range check of λ or r
        if any(isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED
               for s in self.seeds):
            raise MechanismError(f"seeds must be integers in [0, {MAX_SEED}], got {list(self.seeds)}")
        if len(self.seeds) > MAX_SEEDS:
            raise MechanismError(f"a sweep takes at most {MAX_SEEDS} training seeds, got {len(self.seeds)}")
        for what, names in (("category", list(self.categories)), ("value", [f"{v:g}" for v in values]),
                            ("seed", [str(s) for s in self.seeds])):
            if not names or not all(names):
                raise MechanismError(f"a sweep needs at least one {what}, and no empty one")
            repeated = next((n for i, n in enumerate(names) if n in names[:i]), None)
            if repeated is not None:
                raise MechanismError(f"the sweep lists {what} {repeated} twice")
        object.__setattr__(self, "data_root", Path(self.data_root))
        object.__setattr__(self, "categories", tuple(sorted(self.categories)))
        object.__setattr__(self, "values", tuple(sorted(values)))
        object.__setattr__(self, "seeds", tuple(sorted(self.seeds)))

    def run_loss(self, value: float) -> TailLossConfig:
        """``loss`` with the swept setting at ``value`` (validated)."""
        return replace(self.loss, **{SWEPT_COLUMN[self.param]: value})

    def to_dict(self) -> dict:
        """Plain types, for the manifest."""
        return {"data_root": str(self.data_root), "categories": list(self.categories),
                "param": self.param, "values": list(self.values), "seeds": list(self.seeds),
                "loss": self.loss.to_dict(), "backbone": self.backbone.to_dict(),
                "flow": self.flow.to_dict(), "train": self.train.to_dict(),
                "map_score": self.map_score, "image_score": self.image_score}


def plan(spec: SweepSpec) -> list[SweepRunSpec]:
    """Every run of ``spec``, ordered by category, value, seed."""
    return [SweepRunSpec(category, spec.param, spec.run_loss(value), spec.backbone, spec.flow,
                         replace(spec.train, seed=seed), spec.image_score, spec.map_score)
            for category in spec.categories for value in spec.values for seed in spec.seeds]


def _check_shard(index: int, count: int) -> None:
    if not 1 <= index <= count <= MAX_SHARDS:
        raise MechanismError(f"shard {index}/{count} does not exist: use i/n with 1 ≤ i ≤ n ≤ {MAX_SHARDS}")


def shard(runs: Sequence[T], index: int, count: int) -> list[T]:
    """Shard ``index`` of ``count`` (1-based, 1 ≤ index ≤ count): every count-th run, starting
    at the index-th. Shards 1..count are disjoint, together they are ``runs``, and their sizes
    differ by at most one."""
    _check_shard(index, count)
    return list(runs[index - 1::count])


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` → ``(2, 4)``: shard 2 of 4 (1-based).

    Raises:
        MechanismError: not of the form i/n, or not 1 ≤ i ≤ n.
    """
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match is None:
        raise MechanismError(f"shard must be i/n with 1 ≤ i ≤ n (e.g. 2/4), got {text!r}")
    index, count = int(match[1]), int(match[2])
    _check_shard(index, count)
    return index, count
