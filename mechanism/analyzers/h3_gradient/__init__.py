"""H3 — gradient concentration (SPEC §4 H3, claims of §7.3).

On the category's training images, for each condition λ (default 0 "mean-only", the
checkpoint's own λ and 1 "tail-aware"), the Tail-Aware Loss of the checkpoint's flow (eval mode, same parameters, same
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
* Amplification(λ) = ratio(λ) / ratio(λ = 0), per condition. For patches that do not interact,
  ``g_i ∝ (1 − λ)/N + λ/k·[i in tail]``, so amplification is exactly ``1 + λN / ((1 − λ)k)``
  (unbounded at λ = 1, reported as None with the reason, never as inf) and the tail gradient
  gain is exactly ``1 − λ + λN/k``: identities of the loss, checked on the gradient each patch
  receives through its own path (``claims.identities``) and never counted as evidence.
* The non-tail share of Σg at λ = 1 is the leakage: the gradient that reaches patches through
  the spatial context.
* With a baseline: the good test images' NLL tail (mean top-k NLL − mean NLL) of both models
  (H3.training).

95% intervals: percentile bootstrap over images (``mechanism.stats.bootstrap``) from per-image
sums of g over tail and non-tail patches and per-image Gini values; with a baseline checkpoint
the baseline's ratios and amplifications and the paired differences use the same resamples.

Claims (``claims.evidence``, SPEC §7.3): H3.survives_interaction and H3.training.

Modules: ``result`` (settings, thresholds, result records), ``gradients`` (the measurement),
``tail_excess`` (H3.training's measurement), ``claims`` (identities and claims), ``analysis``
(``summarise``, ``run``); the tables are rendered by
``mechanism.report.tables.h3``.
"""
from mechanism.analyzers.h3_gradient.analysis import run, summarise
from mechanism.analyzers.h3_gradient.claims import claim_weight, evidence, identities
from mechanism.analyzers.h3_gradient.gradients import (BaselineMeasurement, ConditionSums,
                                                       PatchGradients, measure, patch_gradients)
from mechanism.analyzers.h3_gradient.result import (GRADIENT_UNIT, SURVIVING_SHARE, H3Condition,
                                                    H3Config, H3Paired, H3Result,
                                                    amplification_identity, tail_gain_identity)
from mechanism.analyzers.h3_gradient.tail_excess import paired_tail_excess, tail_excess

__all__ = ["BaselineMeasurement", "ConditionSums", "GRADIENT_UNIT", "H3Condition", "H3Config",
           "H3Paired", "H3Result", "PatchGradients", "SURVIVING_SHARE", "amplification_identity",
           "claim_weight", "evidence", "identities", "measure", "paired_tail_excess",
           "patch_gradients", "run", "summarise", "tail_excess", "tail_gain_identity"]
