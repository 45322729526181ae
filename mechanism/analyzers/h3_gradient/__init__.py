"""H3 — gradient concentration (SPEC §4 H3).

On the category's training images, for each condition λ (default 0 "mean-only" and 1
"tail-aware"), the Tail-Aware Loss of the checkpoint's flow (eval mode, same parameters, same
batch; r from the checkpoint unless overridden) is backpropagated to the flow input ``x`` (the
backbone features) and each patch gets ``g[h,w] = ‖∂L/∂x[:,h,w]‖₂``.

* One backward pass per batch gives every image's map: images do not interact inside the
  flow, so backpropagating the **sum** over images of each image's own loss
  (``B · tail_aware_loss``, which averages over the batch) makes image ``b``'s map the gradient
  of its own loss, independent of the batch size (the batch mean would scale every g by 1/B).
  The loss is linear in λ for a fixed tail, so two backward passes (λ = 0 and λ = 1) give
  every condition exactly.
* Tail patches: per image the top-k patches by the checkpoint's NLL (``k = max(1, round(N·r))``,
  exactly the patches the λ > 0 loss selects); non-tail: all others.
* Per condition: tail gradient = mean g over all images' tail patches, non-tail gradient = mean
  over the other patches (pooled), ratio = tail / non-tail; Gini of each image's g
  (``mechanism.stats.inequality.gini``) averaged over images.
* Amplification = ratio(largest λ) / ratio(λ = 0); theoretical N/k.
  Also the tail gradient gain = tail gradient(largest λ) / tail gradient(λ = 0), which for
  patches that do not interact is exactly ``1 − λ + λ·N/k`` (N/k at λ = 1), because then
  ``g_i ∝ (1 − λ)/N + λ/k·[i in tail]``. The ratio of ratios has no such bound: without
  interaction the non-tail gradient at λ = 1 is exactly 0 and the ratio is unbounded (reported
  as None with the reason, never as inf).

95% intervals: percentile bootstrap over images (``mechanism.stats.bootstrap``) from per-image
sums of g over tail and non-tail patches and per-image Gini values; with a baseline checkpoint
the baseline's ratios and amplification and the paired differences use the same resamples.

Verdict (``verdict``): SUPPORTED if amplification ≥ 0.5·N/k (or unbounded), PARTIAL if > 2,
else NOT SUPPORTED; an undefined amplification is NOT SUPPORTED.

Modules: ``result`` (settings, thresholds, result records), ``gradients`` (the measurement),
``verdict`` (the rule), ``analysis`` (``summarise``, ``run``); the tables are rendered by
``mechanism.report.tables.h3``.
"""
from mechanism.analyzers.h3_gradient.analysis import run, summarise
from mechanism.analyzers.h3_gradient.gradients import (BaselineMeasurement, ConditionSums,
                                                       PatchGradients, measure, patch_gradients)
from mechanism.analyzers.h3_gradient.result import (GRADIENT_UNIT, PARTIAL_AMPLIFICATION,
                                                    SUPPORT_SHARE, H3Condition, H3Config, H3Paired,
                                                    H3Result)
from mechanism.analyzers.h3_gradient.verdict import verdict

__all__ = ["BaselineMeasurement", "ConditionSums", "GRADIENT_UNIT", "H3Condition", "H3Config",
           "H3Paired", "H3Result", "PARTIAL_AMPLIFICATION", "PatchGradients", "SUPPORT_SHARE",
           "measure", "patch_gradients", "run", "summarise", "verdict"]
