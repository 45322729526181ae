"""H1's control (SPEC §7.3): is the tail's edge preference the image or the network?

The model runs on every image flipped left–right and top–bottom; each tail (top-k NLL cells) is
kept in the grid coordinates of the input it was computed on.

* Distribution level (primary): the share of all tail cells on each side of the grid (top and
  bottom row, left and right column, corners) against the uniform share, on the original and
  the flipped inputs. For the left–right flip the grid-anchoring index is
  ``G_LR = (right − left)(flipped) / (right − left)(original)``: +1 when the asymmetry stays
  on the grid (padding, receptive field, position condition), −1 when it follows the image
  content; ``G_TB`` likewise with bottom − top. G is given only where the original asymmetry's
  interval excludes 0.
* Validity: the control assumes a flipped normal image is still normal to the model. The share
  of flipped images whose mean patch NLL exceeds the originals' 95th percentile (5% if so) is
  printed; when most of them do, the reading says the control is confounded (an oriented
  object, e.g. a part photographed one way up, becomes an anomaly when flipped).
* Cell level (secondary): per image, grid-anchored share ``|T ∩ T_flip| / |T|`` and
  content-following share ``|T ∩ mirror(T_flip)| / |T|`` on border (edge distance 0) and
  interior cells, cells on the mirror axis left out. Their chance level is not k/N: tails share
  the edge preference, so the shares are set beside those of *another* image's flipped tail
  (image i + 1), which no image content links to image i.

G tests only the asymmetric part of an edge preference (right − left, bottom − top): a flip maps
the border onto itself, so an excess shared by all four sides is neither anchored nor freed by
it and needs another control (a shift of the grid against the image).

Intervals: percentile bootstrap over images (shared resamples) from per-image counts; with
several training seeds' models, over seeds × images (``seeds_bootstrap``), each statistic the
mean over seeds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from mechanism.data.images import load_image
from mechanism.data.mvtec import Sample
from mechanism.eval.detector import Detector
from mechanism.stats.bootstrap import Interval, seeds_bootstrap
from mechanism.stats.edge_distance import SIDES, edge_distance_grid, grid_sides
from mechanism.train.loss import select_tail

FLIPS = {"left-right": ("right", "left"), "top-bottom": ("bottom", "top")}   # flip → asymmetry sides
UNUSUAL_LEVEL = 0.05       # originals above their own 95th percentile of mean NLL: the chance level
CONFOUNDED_SHARE = 0.5     # most flipped images above it (interval's low end): the flip itself is
                           # an anomaly to the model, and G cannot separate image from network
_FLIP_DIMS = {"left-right": (-1,), "top-bottom": (-2,)}
METHOD = ("the model on each image flipped left–right and top–bottom (backbone re-run on the "
          "flipped input, features not cached); tails in the grid coordinates of their input; "
          "95% percentile bootstrap over training seeds × images from per-image counts, "
          "shared resamples")


@dataclass(frozen=True)
class CellAgreement:
    """How a flipped input's tail cells match the original tail on one region of the grid."""
    region: str                          # "border" (edge distance 0) or "interior" (≥ 1)
    grid_anchored: Interval | None       # |T ∩ T_flip| / |T|; None: no tail cell in the region
    content_following: Interval | None   # |T ∩ mirror(T_flip)| / |T|
    n_tail_cells: int                    # original tail cells of the region, all images
    chance_grid_anchored: float | None   # the same share against image i + 1's flipped tail
    chance_content_following: float | None


@dataclass(frozen=True)
class FlipOutcome:
    """One flip: tail side shares on the flipped inputs and the grid-anchoring index."""
    flip: str                            # "left-right" or "top-bottom"
    sides: dict[str, Interval]           # SIDES → tail share on the flipped inputs (grid coordinates)
    asymmetry: str                       # "right − left" or "bottom − top"
    asymmetry_original: Interval         # that share difference on the original inputs
    asymmetry_flipped: Interval          # … and on the flipped inputs
    anchoring: Interval | None           # G = flipped / original asymmetry; None: anchoring_note
    anchoring_note: str
    reading: str                         # what G says, in words
    cells: tuple[CellAgreement, ...]     # border, interior
    flipped_unusual: Interval | None = None   # share of flipped images whose mean patch NLL
                                         # exceeds the originals' 95th percentile (UNUSUAL_LEVEL
                                         # if flipping keeps images normal); None: not measured


@dataclass(frozen=True)
class FlipControl:
    """The flip control of H1 (printed beside the verdict, not a claim)."""
    uniform_sides: dict[str, float]      # SIDES → share of the grid's cells
    original_sides: dict[str, Interval]  # SIDES → tail share on the original inputs
    flips: tuple[FlipOutcome, ...]       # left-right, top-bottom
    chance_share: float                  # k/N: cell share a uniformly random tail would give
    method: str


@torch.inference_mode()
def flipped_features(detector: Detector, samples: list[Sample], flip: str, batch_size: int,
                     progress: bool = True) -> torch.Tensor:
    """Backbone features ``(n, D, H, W)`` float32 (CPU) of each image flipped by ``flip`` (a
    FLIPS key), in the grid coordinates of the flipped input; every model sharing
    ``detector``'s backbone scores them."""
    size = detector.backbone.cfg.input_shape
    out = []
    for start in tqdm(range(0, len(samples), batch_size), desc=f"H1 {flip} flip", disable=not progress):
        batch = samples[start:start + batch_size]
        images = torch.from_numpy(np.stack([load_image(s.path, size) for s in batch]))
        out.append(detector.image_features(images.flip(_FLIP_DIMS[flip])).cpu())
    return torch.cat(out)


def tail_mask(nll: torch.Tensor, k: int) -> np.ndarray:
    """``(n, H·W)`` bool: each image's top-k cells of ``nll (n, H, W)``."""
    index = select_tail(nll, k, "topk").cpu().numpy()
    mask = np.zeros((len(nll), nll[0].numel()), dtype=bool)
    np.put_along_axis(mask, index, True, axis=1)
    return mask


def _mirror(h: int, w: int, flip: str) -> np.ndarray:
    """``(H·W,)``: the flipped grid's cell that shows original cell c's content."""
    cells = np.arange(h * w).reshape(h, w)
    return (cells[:, ::-1] if flip == "left-right" else cells[::-1, :]).ravel()


def _per_image(counts: np.ndarray):
    """Statistic of image weights: the weighted mean of per-image ``counts``."""
    return lambda wt: float(wt @ counts / wt.sum())


def _reading(g: Interval | None, note: str, unusual: Interval | None = None) -> str:
    if unusual is not None and unusual.low is not None and unusual.low > CONFOUNDED_SHARE:
        return (f"confounded: {unusual.estimate:.0%} of the flipped images look anomalous to the "
                f"model ({UNUSUAL_LEVEL:.0%} expected), so the flip changes more than the "
                "orientation and G cannot tell image from network")
    if g is None:
        return note
    if g.low is None or g.high is None:
        return "no interval"
    if g.low > 0:
        return ("the asymmetry stays on the grid (the network)" if g.high >= 1 else
                "partly on the grid: the asymmetry keeps its side but shrinks (0 < G < 1)")
    if g.high < 0:
        return ("the asymmetry follows the image content" if g.low <= -1 else
                "partly follows the image content (−1 < G < 0)")
    return "undecided: the interval of G includes 0"


def _seed_statistics(original: np.ndarray, flipped: dict[str, np.ndarray], h: int, w: int,
                     nll_means: dict[str, np.ndarray] | None = None
                     ) -> tuple[dict, dict[tuple[str, str], int], dict[tuple[str, str], tuple[int, int]]]:
    """One model's per-image counts as statistics of image weights (each share is a ratio of
    two of them: ``_RATIOS``), its original tail cells per (flip, region), and its counts of
    chance agreement with image i + 1's flipped tail per (flip, region): (grid-anchored,
    content-following)."""
    n, n_patches = original.shape
    sides = grid_sides(h, w)
    border = edge_distance_grid(h, w).ravel() == 0
    stats = {"tail": _per_image(original.sum(1).astype(float))}
    cell_counts, chance = {}, {}

    def side_counts(prefix: str, mask: np.ndarray) -> None:
        for side in SIDES:
            stats[f"{prefix}.{side}.n"] = _per_image((mask & sides[side]).sum(1).astype(float))

    side_counts("original", original)
    for flip, (plus, minus) in FLIPS.items():
        side_counts(flip, flipped[flip])
        for role, mask in (("original", original), ("flipped", flipped[flip])):
            diff = ((mask & sides[plus]).sum(1) - (mask & sides[minus]).sum(1)).astype(float)
            stats[f"{flip}.asym_{role}.n"] = _per_image(diff)
        mirror = _mirror(h, w, flip)
        off_axis = mirror != np.arange(n_patches)
        other = np.roll(flipped[flip], -1, axis=0)          # image i + 1's flipped tail
        for region, cells in (("border", border), ("interior", ~border)):
            mine = original & (cells & off_axis)
            cell_counts[(flip, region)] = int(mine.sum())
            stats[f"{flip}.{region}.n"] = _per_image(mine.sum(1).astype(float))
            stats[f"{flip}.{region}.grid.n"] = _per_image((mine & flipped[flip]).sum(1).astype(float))
            stats[f"{flip}.{region}.content.n"] = _per_image(
                (mine & flipped[flip][:, mirror]).sum(1).astype(float))
            chance[(flip, region)] = (int((mine & other).sum()), int((mine & other[:, mirror]).sum()))
        if nll_means is not None:
            bar = np.quantile(nll_means["original"], 1 - UNUSUAL_LEVEL)
            stats[f"{flip}.unusual"] = _per_image((nll_means[flip] > bar).astype(float))
    return stats, cell_counts, chance


def _ratios() -> dict[str, tuple[str, str]]:
    """Every share of the control as (numerator, denominator) per-image counts: a ratio of
    their means over seeds and images (a seed with few cells of a kind weighs little)."""
    out = {f"original.{side}": (f"original.{side}.n", "tail") for side in SIDES}
    for flip in FLIPS:
        out |= {f"{flip}.{side}": (f"{flip}.{side}.n", "tail") for side in SIDES}
        out |= {f"{flip}.asym_{role}": (f"{flip}.asym_{role}.n", "tail")
                for role in ("original", "flipped")}
        out[f"{flip}.G"] = (f"{flip}.asym_flipped.n", f"{flip}.asym_original.n")
        for region in ("border", "interior"):
            out |= {f"{flip}.{region}.{kind}": (f"{flip}.{region}.{kind}.n", f"{flip}.{region}.n")
                    for kind in ("grid", "content")}
    return out


def flip_control(originals: list[np.ndarray], flipped: list[dict[str, np.ndarray]], h: int, w: int,
                 n_boot: int, seed: int, nll_means: list[dict[str, np.ndarray]] | None = None
                 ) -> FlipControl:
    """The control from tail masks ``(n, H·W)`` of each training seed's model on the same
    images: ``originals[s]`` and ``flipped[s][flip]`` per FLIPS key (grid coordinates of each
    input). Every share and G is a ratio of counts pooled over seeds and images; intervals over
    seeds × images. ``nll_means[s]``: per-image mean patch NLL ``(n,)`` of seed s's model on the
    "original" and each flipped input — is a flipped image still normal to the model? (None:
    not measured)."""
    n, n_patches = originals[0].shape
    k = int(originals[0][0].sum())
    measured = [_seed_statistics(o, f, h, w, None if nll_means is None else nll_means[i])
                for i, (o, f) in enumerate(zip(originals, flipped))]
    intervals = seeds_bootstrap(
        [{name: (lambda idx, f=fn: f(np.bincount(idx, minlength=n).astype(float)))
          for name, fn in stats.items()} for stats, _, _ in measured], n, n_boot, seed,
        ratios=_ratios())
    cell_counts = {key: sum(m[1][key] for m in measured) for key in measured[0][1]}
    chance = {key: tuple(sum(m[2][key][i] for m in measured) / cell_counts[key] for i in (0, 1))
              for key in measured[0][2] if cell_counts[key] > 0}
    flips = []
    for flip, (plus, minus) in FLIPS.items():
        orig = intervals[f"{flip}.asym_original"]
        excludes_zero = orig.low is not None and orig.high is not None and \
            (orig.low > 0 or orig.high < 0)
        note = "" if excludes_zero else (f"no asymmetry: the original {plus} − {minus} share "
                                         f"{orig.format('{:.3f}')} does not exclude 0")
        g = intervals.get(f"{flip}.G") if excludes_zero else None
        cells = tuple(CellAgreement(
            region,
            *(None if cell_counts[(flip, region)] == 0 else intervals.get(f"{flip}.{region}.{kind}")
              for kind in ("grid", "content")),
            cell_counts[(flip, region)], *chance.get((flip, region), (None, None)))
            for region in ("border", "interior"))
        unusual = intervals.get(f"{flip}.unusual")
        flips.append(FlipOutcome(flip, {s: intervals[f"{flip}.{s}"] for s in SIDES},
                                 f"{plus} − {minus}", orig, intervals[f"{flip}.asym_flipped"], g,
                                 note, _reading(g, note, unusual), cells, unusual))
    sides = grid_sides(h, w)
    return FlipControl({s: float(m.mean()) for s, m in sides.items()},
                       {s: intervals[f"original.{s}"] for s in SIDES}, tuple(flips),
                       k / n_patches, METHOD)
