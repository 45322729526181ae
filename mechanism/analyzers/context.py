"""What every analysis result states about its inputs, and helpers every analyzer shares (the
verdict vocabulary is ``mechanism.stats.evidence``'s)."""
from __future__ import annotations

from dataclasses import dataclass

from mechanism.errors import MechanismError
from mechanism.stats.bootstrap import Interval, PairedStat
from mechanism.train.checkpoint import Checkpoint


@dataclass(frozen=True)
class AnalysisContext:
    """The exact inputs of one analysis run (printed and stored with every result)."""
    checkpoint: str        # checkpoint path as given
    category: str          # data category
    split: str             # "train", "test" or "test/good"
    n_images: int          # images used
    grid_h: int            # H of the patch grid
    grid_w: int            # W of the patch grid
    n_patches: int         # N = H·W
    k: int                 # tail patches per image, max(1, round(N·r))
    top_k_ratio: float     # r of the checkpoint's loss (or the analysis' override)
    seed: int              # seed of every random choice in the analysis
    n_boot: int            # bootstrap resamples (0 = none)
    training_seeds: tuple[int, ...] = ()   # seeds of the checkpoints analysed (the first is
                           # ``checkpoint``'s): intervals over seeds × images; () = that one only

    @property
    def n_seeds(self) -> int:
        """Training seeds S behind every estimate."""
        return max(1, len(self.training_seeds))


def checkpoint_label(ckpt: Checkpoint) -> str:
    """How a result names its checkpoint: loss settings, category, training seed, data hash."""
    loss = ckpt.loss
    return (f"λ={loss.tail_weight:g} r={loss.top_k_ratio:g} {loss.selection} on "
            f"{ckpt.data.category} (train seed {ckpt.train.seed}, data {ckpt.data.fingerprint[:12]})")


def training_seeds(checkpoints: list[Checkpoint], analysis: str) -> tuple[int, ...]:
    """``AnalysisContext.training_seeds`` of ``analysis`` over ``checkpoints`` (the analysed one
    first, then its seed replicates): their seeds, or () for one checkpoint.

    Raises:
        MechanismError: a replicate on another backbone or grid than the analysed checkpoint,
            or two checkpoints of one training seed (a replicate must be another seed).
    """
    main = checkpoints[0]
    if any(c.backbone != main.backbone or c.grid != main.grid for c in checkpoints[1:]):
        raise MechanismError(f"{analysis}'s seed replicates must share the analysed checkpoint's "
                             "backbone and grid")
    seeds = tuple(c.train.seed for c in checkpoints)
    if len(set(seeds)) != len(seeds):
        raise MechanismError(f"seed replicates must be distinct training seeds, got {list(seeds)}")
    return seeds if len(seeds) > 1 else ()


def seeds_label(label: str, n_seeds: int) -> str:
    """A checkpoint's label, naming the further seeds' checkpoints an estimate also averages."""
    return label if n_seeds <= 1 else \
        f"{label}, and the same condition's checkpoints of {n_seeds - 1} more training seeds"


def check_common_settings(cfg) -> None:
    """Validate the fields every analyzer config shares: ``n_boot``, ``batch_size``, ``max_images``.

    Raises:
        MechanismError: for a negative bootstrap count, a batch size < 1 or max images < 1.
    """
    if cfg.n_boot < 0:
        raise MechanismError(f"bootstrap resamples must be ≥ 0, got {cfg.n_boot}")
    if cfg.batch_size < 1:
        raise MechanismError(f"batch size must be ≥ 1, got {cfg.batch_size}")
    if cfg.max_images is not None and cfg.max_images < 1:
        raise MechanismError(f"max images must be ≥ 1, got {cfg.max_images}")


def tail_setup(ckpt: Checkpoint, ratio: float | None, analysis: str,
               baseline: Checkpoint | None = None) -> tuple[int, int, float, int]:
    """``(H, W, r, k)`` of an analysis that splits patches into tail and non-tail.

    ``ratio`` overrides the checkpoint's r. Raises MechanismError when the tail would hold every
    patch, or when ``baseline`` has another grid.
    """
    from mechanism.train.loss import tail_k
    h, w, _ = ckpt.grid
    r = ratio if ratio is not None else ckpt.loss.top_k_ratio
    k = tail_k(h * w, r)
    if k >= h * w:
        raise MechanismError(f"{analysis} needs non-tail patches, but r = {r:g} puts all N = {h * w} "
                             f"patches of the {h}×{w} grid in the tail")
    if baseline is not None and baseline.grid != ckpt.grid:
        raise MechanismError(f"baseline grid {baseline.grid} differs from the analysed "
                             f"checkpoint's {ckpt.grid} (H, W, D)")
    return h, w, r, k


def paired_stat(intervals: dict[str, Interval], name: str) -> PairedStat | None:
    """``PairedStat`` of statistic ``name`` from bootstrap intervals keyed ``baseline_<name>``,
    ``<name>`` (candidate) and ``difference_<name>``; None when the difference is absent."""
    if f"difference_{name}" not in intervals:
        return None
    return PairedStat(intervals[f"baseline_{name}"], intervals[name],
                      intervals[f"difference_{name}"])
