"""H1 — tail patches sit on image boundaries (SPEC §4 H1).

On the category's training images (all normal), the tail of each image is its top-k patches by
the checkpoint's per-patch NLL (``k = max(1, round(N·r))``); every other patch is non-tail.

* Location: the tail patches' edge distances ``d = min(i, j, H−1−i, W−1−j)`` (cells) against the
  exact law of ``d`` for a uniformly random cell (one-sample KS, ``KS_METHOD``).
* Image content: the Sobel gradient magnitude of the grey input image averaged over each patch's
  pixel footprint (``GRADIENT_METHOD``), tail vs non-tail: means, ratio, Mann-Whitney U
  (two-sided, scipy's asymptotic normal approximation with tie correction), Cliff's δ.

95% intervals are percentile bootstraps over images built from per-image sums (edge-distance
mean, gradient ratio) and pairwise sign sums (Cliff's δ). The KS and Mann-Whitney p-values treat
patches as independent; the k tail cells of one image are distinct and neighbouring patches are
correlated, so those p-values are optimistic about independence — the image-level intervals are
the robust evidence.

Verdict (``verdict``): the location effect holds when KS p < α **and** the tail lies nearer the
edges than a uniform cell (tail mean < uniform mean; a tail that avoids the edges is not evidence
for H1); the gradient effect holds when Mann-Whitney p < α and the gradient ratio ≥ 1.10.
Both → SUPPORTED, exactly one → PARTIAL, neither → NOT SUPPORTED.

Modules: ``result`` (settings, thresholds, result records), ``gradient`` (the Sobel gradient
of each patch footprint), ``verdict`` (the rule), ``analysis`` (the tail split, intervals and
``run``); the tables are rendered by ``mechanism.report.tables.h1``.
"""
from mechanism.analyzers.h1_edge.gradient import (GRADIENT_METHOD, LUMA_601, image_patch_gradients,
                                                  patch_gradient)
from mechanism.analyzers.h1_edge.analysis import run
from mechanism.analyzers.h1_edge.result import (QUANTILE_LEVELS, RATIO_THRESHOLD,
                                                GradientDistribution, H1Config, H1Paired, H1Result)
from mechanism.analyzers.h1_edge.verdict import verdict

__all__ = ["GRADIENT_METHOD", "LUMA_601", "QUANTILE_LEVELS", "RATIO_THRESHOLD",
           "GradientDistribution", "H1Config", "H1Paired", "H1Result", "image_patch_gradients",
           "patch_gradient", "run", "verdict"]
