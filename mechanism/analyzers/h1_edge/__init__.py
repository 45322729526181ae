"""H1 — tail patches sit on image boundaries (SPEC §4 H1, claims of §7.3).

On the category's training images (all normal), the tail of each image is its top-k patches by
the checkpoint's per-patch NLL (``k = max(1, round(N·r))``); every other patch is non-tail.

* Location: the tail patches' edge distances ``d = min(i, j, H−1−i, W−1−j)`` (cells) against the
  exact law of ``d`` for a uniformly random cell (one-sample KS, ``KS_METHOD``).
* Image content: the Sobel gradient magnitude of the grey input image averaged over each patch's
  pixel footprint (``GRADIENT_METHOD``), tail vs non-tail: means, ratio, Mann-Whitney U
  (two-sided, scipy's asymptotic normal approximation with tie correction), Cliff's δ.

95% intervals are percentile bootstraps over images built from per-image sums (edge-distance
mean, gradient ratios) and pairwise sign sums (Cliff's δ). The KS and Mann-Whitney p-values treat
patches as independent; the k tail cells of one image are distinct and neighbouring patches are
correlated, so those p-values are optimistic about independence — the image-level intervals are
the evidence.

Claims (``claims.evidence``, SPEC §7.3): **H1.location** — the mean tail edge distance lies below
the uniform expectation (interval) and KS p < α; **H1.content** — the gradient ratio tail /
non-tail on *interior* cells (edge distance ≥ 1, so the border's own image statistics cannot
drive it) is ≥ 1.10 (interval) and the interior Mann-Whitney p < α; the all-cells ratio is
printed beside it. The flip control (``flip_control``) asks whether an edge preference is the
image or the network; it is printed beside the verdict, not counted in it.

Modules: ``result`` (settings, thresholds, result records), ``gradient`` (the Sobel gradient
of each patch footprint), ``flip_control`` (the control), ``claims`` (the evidence),
``analysis`` (the tail split, intervals and ``run``); the tables are rendered by
``mechanism.report.tables.h1``.
"""
from mechanism.analyzers.h1_edge.claims import evidence
from mechanism.analyzers.h1_edge.flip_control import FLIPS, FlipControl, flip_control, flipped_features
from mechanism.analyzers.h1_edge.gradient import (GRADIENT_METHOD, LUMA_601, image_patch_gradients,
                                                  patch_gradient)
from mechanism.analyzers.h1_edge.analysis import run
from mechanism.analyzers.h1_edge.result import (QUANTILE_LEVELS, RATIO_THRESHOLD,
                                                GradientDistribution, H1Config, H1Paired, H1Result)

__all__ = ["FLIPS", "FlipControl", "GRADIENT_METHOD", "LUMA_601", "QUANTILE_LEVELS",
           "RATIO_THRESHOLD", "GradientDistribution", "H1Config", "H1Paired", "H1Result",
           "evidence", "flip_control", "flipped_features", "image_patch_gradients", "patch_gradient",
           "run"]
