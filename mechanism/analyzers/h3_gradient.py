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
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from mechanism.analyzers.context import (AnalysisContext, Verdict, check_common_settings,
                                         checkpoint_label, tail_setup)
from mechanism.stats.bootstrap import PairedStat
from mechanism.data.mvtec import read_split
from mechanism.eval.detector import Detector
from mechanism.errors import MechanismError
from mechanism.flow import PatchFlow, patch_nll
from mechanism.train.loss import TailLossConfig, select_tail, tail_aware_loss, tail_k
from mechanism.stats.bootstrap import Interval, bootstrap
from mechanism.stats.inequality import gini
from mechanism.io.text import markdown_table

SUPPORT_SHARE = 0.5        # SUPPORTED needs amplification ≥ 0.5 · N/k (SPEC §4 H3)
PARTIAL_AMPLIFICATION = 2.0  # PARTIAL needs amplification > 2
GRADIENT_UNIT = ("‖∂L/∂x[:, h, w]‖₂ per patch: L = the image's own Tail-Aware Loss (nats per "
                 "dimension) of the checkpoint's flow in eval mode, x = its input backbone "
                 "features; backward passes of the sum of the images' losses, so a map does "
                 "not depend on the batch size")


@dataclass(frozen=True)
class H3Config:
    """Settings of the H3 analysis."""
    seed: int = 0                              # seeds the bootstrap resamples
    n_boot: int = 1000                         # bootstrap resamples for 95% intervals (0 = none)
    batch_size: int = 32                       # images per forward/backward batch
    max_images: int | None = None              # use the first n training images (sorted by name)
    lambdas: tuple[float, ...] = (0.0, 1.0)    # loss conditions λ ∈ [0, 1]; must include 0
    top_k_ratio: float | None = None           # r defining k and the tail; None: the checkpoint's

    def __post_init__(self):
        check_common_settings(self)
        if self.top_k_ratio is not None and not 0.0 < self.top_k_ratio <= 1.0:
            raise MechanismError(f"top-k ratio r must lie in (0, 1], got {self.top_k_ratio}")
        lambdas = tuple(float(v) for v in self.lambdas)
        if any(not 0.0 <= v <= 1.0 for v in lambdas):
            raise MechanismError(f"H3 conditions λ must lie in [0, 1], got {lambdas}")
        if len(set(lambdas)) != len(lambdas):
            raise MechanismError(f"H3 conditions λ must be distinct, got {lambdas}")
        if 0.0 not in lambdas or len(lambdas) < 2:
            raise MechanismError(f"H3 needs λ = 0 (mean-only) and at least one λ > 0 to compare, "
                                 f"got {lambdas}")
        object.__setattr__(self, "lambdas", tuple(sorted(lambdas)))


# ---------------------------------------------------------------------------------------------
# Gradients

class PatchGradients(NamedTuple):
    """Per-patch gradient norms of one batch under each condition."""
    norms: dict[float, torch.Tensor]   # λ → (B, H, W) float32 ‖∂L_b/∂x_b[:, h, w]‖₂
    tail: torch.Tensor                 # (B, H, W) bool, each image's top-k patches by NLL


@torch.enable_grad()
def patch_gradients(flow: PatchFlow, features: torch.Tensor, lambdas: Sequence[float],
                    top_k_ratio: float) -> PatchGradients:
    """Each image's per-patch gradient norm of its own Tail-Aware Loss, for every λ.

    One forward pass, then one backward pass to the input for each end point λ = 0 and λ = 1
    that is needed, of ``B · tail_aware_loss`` (= the sum of the per-image losses). The loss is
    linear in λ for a fixed tail, so ``∂L_λ/∂x = (1 − λ)·∂L_0/∂x + λ·∂L_1/∂x`` exactly: any
    number of conditions costs at most two backward passes. When the flow's patches do not
    interact, patch p's NLL depends on ``x[:, p]`` alone, so its loss gradient is
    ``((1 − λ)/N + λ·[p ∈ tail]/k)·∂NLL_p/∂x_p``: one backward pass of ``Σ NLL`` serves every λ.
    The flow's mode is left as it is (eval for a loaded detector).

    Args:
        flow: the patch flow.
        features: ``(B, D, H, W)`` flow input on the flow's device.
        lambdas: conditions λ ∈ [0, 1].
        top_k_ratio: r; ``k = max(1, round(N·r))``.

    Raises:
        MechanismError: if a patch NLL is not finite (the tail would be undefined).
    """
    x = features.detach().clone().requires_grad_(True)
    nll = patch_nll(flow(x))
    if not torch.isfinite(nll).all():
        bad = int((~torch.isfinite(nll)).flatten(1).any(1).sum())
        raise MechanismError(f"the flow gives non-finite patch NLLs on {bad} of {len(nll)} "
                             "images: the tail and its gradient are undefined")
    k = tail_k(nll[0].numel(), top_k_ratio)
    tail = torch.zeros_like(nll, dtype=torch.bool).flatten(1)
    tail.scatter_(1, select_tail(nll.detach(), k, "topk"), True)
    lambdas = [float(lam) for lam in lambdas]
    if not flow.patches_interact:
        (grad,) = torch.autograd.grad(nll.sum(), x)
        norm, in_tail = grad.norm(dim=1), tail.view_as(nll).to(grad.dtype)
        return PatchGradients({lam: norm * ((1.0 - lam) / nll[0].numel() + lam * in_tail / k)
                               for lam in lambdas}, tail.view_as(nll))
    ends = [end for end, needed in ((0.0, any(lam < 1 for lam in lambdas)),
                                    (1.0, any(lam > 0 for lam in lambdas))) if needed]
    end_grads = {}
    for i, end in enumerate(ends):
        loss = len(x) * tail_aware_loss(nll, TailLossConfig(end, top_k_ratio, "topk"))
        (end_grads[end],) = torch.autograd.grad(loss, x, retain_graph=i < len(ends) - 1)
    norms = {}
    for lam in lambdas:
        grad = end_grads[lam] if lam in end_grads else \
            (1.0 - lam) * end_grads[0.0] + lam * end_grads[1.0]
        norms[lam] = grad.norm(dim=1)
    return PatchGradients(norms, tail.view_as(nll))


@dataclass(frozen=True)
class ConditionSums:
    """One model under one λ: per-image sufficient statistics of its gradient maps.

    Statistics take resampled image indices ``idx`` ``(n,)`` (with repeats; ``arange(n)``
    for the data itself) and return NaN where undefined (a zero denominator).
    """
    tail_weight: float         # λ
    k: int                     # tail patches per image
    n_patches: int             # N
    tail_sum: np.ndarray       # (n,) float64 Σ g over the image's k tail patches
    nontail_sum: np.ndarray    # (n,) float64 Σ g over its N − k other patches
    gini: np.ndarray           # (n,) float64 Gini of the image's g; NaN: all-zero map
    map_sum: np.ndarray        # (H, W) float64 Σ over images of g

    def tail_mean(self, idx: np.ndarray) -> float:
        return float(self.tail_sum[idx].sum() / (len(idx) * self.k))

    def nontail_mean(self, idx: np.ndarray) -> float:
        return float(self.nontail_sum[idx].sum() / (len(idx) * (self.n_patches - self.k)))

    def ratio(self, idx: np.ndarray) -> float:
        tail, nontail = self.tail_mean(idx), self.nontail_mean(idx)
        return tail / nontail if nontail > 0 else float("nan")

    def gini_mean(self, idx: np.ndarray) -> float:
        values = self.gini[idx]
        values = values[np.isfinite(values)]
        return float(values.mean()) if len(values) else float("nan")

    @property
    def ratio_unbounded(self) -> bool:
        """Non-tail gradient exactly 0 with a non-zero tail gradient."""
        return bool(self.nontail_sum.sum() == 0 and self.tail_sum.sum() > 0)

    def ratio_note(self) -> str:
        """Why the pooled ratio is undefined ("" when it is defined)."""
        if self.nontail_sum.sum() > 0:
            return ""
        if self.ratio_unbounded:
            return (f"non-tail gradient is exactly 0 at λ = {self.tail_weight:g}: patches do not "
                    "interact, ratio is unbounded")
        return f"every patch gradient is exactly 0 at λ = {self.tail_weight:g}: ratio undefined"

    def gini_note(self) -> str:
        """Images left out of the Gini mean ("" when none)."""
        undefined = int(np.isnan(self.gini).sum())
        if undefined == 0:
            return ""
        if undefined == len(self.gini):
            return f"Gini undefined at λ = {self.tail_weight:g}: every image's gradient map is all zero"
        return (f"Gini undefined for {undefined} of {len(self.gini)} images at λ = "
                f"{self.tail_weight:g} (all-zero gradient map); averaged over the others")


def measure(flow: PatchFlow, features: torch.Tensor, lambdas: Sequence[float], top_k_ratio: float,
            batch_size: int, progress: bool = False, desc: str = "H3 gradients"
            ) -> tuple[ConditionSums, ...]:
    """``patch_gradients`` over all images in batches, reduced to per-image sums.

    Args:
        features: ``(n, D, H, W)`` float32 (any device; batches move to the flow's device).

    Returns:
        one ``ConditionSums`` per λ, in the order of ``lambdas``.
    """
    device = next(flow.parameters()).device
    n_patches = features.shape[2] * features.shape[3]
    k = tail_k(n_patches, top_k_ratio)
    parts: dict[float, list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]] = \
        {float(lam): [] for lam in lambdas}
    for start in tqdm(range(0, len(features), batch_size), desc=desc, disable=not progress):
        grads = patch_gradients(flow, features[start:start + batch_size].to(device), lambdas,
                                top_k_ratio)
        tail = grads.tail.cpu().numpy()
        for lam, norm in grads.norms.items():
            g = norm.cpu().double().numpy()                                   # (B, H, W)
            parts[lam].append((np.where(tail, g, 0.0).sum(axis=(1, 2)),
                               np.where(tail, 0.0, g).sum(axis=(1, 2)),
                               gini(g.reshape(len(g), -1)), g.sum(axis=0)))
    return tuple(ConditionSums(lam, k, n_patches, *(np.concatenate([p[i] for p in chunks])
                                                    for i in range(3)),
                               np.sum([p[3] for p in chunks], axis=0))
                 for lam, chunks in parts.items())


# ---------------------------------------------------------------------------------------------
# Result records

@dataclass(frozen=True)
class H3Condition:
    """Gradient concentration of the analysed model under one λ."""
    tail_weight: float                                 # λ
    tail_gradient: Interval                            # mean g over tail patches (pooled)
    nontail_gradient: Interval                         # mean g over the other patches (pooled)
    ratio: Interval | None                             # tail / non-tail; None: see ratio_note
    gini: Interval | None                              # mean of the images' Gini; None: gini_note
    ratio_note: str                                    # why ratio is None ("" otherwise)
    gini_note: str                                     # why gini is None or images left out
    mean_gradient_map: tuple[tuple[float, ...], ...]   # (H, W) mean g over images
    image_tail_gradient: tuple[float, ...]             # (n,) each image's mean tail g
    image_nontail_gradient: tuple[float, ...]          # (n,) each image's mean non-tail g

    @property
    def label(self) -> str:
        """Row name of the study's table."""
        if self.tail_weight == 0:
            return "Mean-only (λ=0)"
        if self.tail_weight == 1:
            return "Tail-aware (λ=1)"
        return f"Mixed (λ={self.tail_weight:g})"

    @classmethod
    def from_dict(cls, d: dict) -> "H3Condition":
        optional = {k: None if d[k] is None else Interval(**d[k]) for k in ("ratio", "gini")}
        return cls(d["tail_weight"], Interval(**d["tail_gradient"]),
                   Interval(**d["nontail_gradient"]), optional["ratio"], optional["gini"],
                   d["ratio_note"], d["gini_note"], tuple(tuple(r) for r in d["mean_gradient_map"]),
                   tuple(d["image_tail_gradient"]), tuple(d["image_nontail_gradient"]))


@dataclass(frozen=True)
class H3Paired:
    """Baseline vs candidate on the same images and resamples (each with its own tail, same k)."""
    baseline_checkpoint: str                 # the baseline checkpoint's label
    baseline_tail_weight: float              # λ the baseline was trained with
    ratio: tuple[PairedStat | None, ...]     # per condition, in the order of ``H3Result.conditions``
    amplification: PairedStat | None
    note: str                                # why a paired statistic is None ("" otherwise)

    @classmethod
    def from_dict(cls, d: dict) -> "H3Paired":
        def paired(v):
            return None if v is None else PairedStat.from_dict(v)
        return cls(d["baseline_checkpoint"], d["baseline_tail_weight"],
                   tuple(paired(v) for v in d["ratio"]), paired(d["amplification"]), d["note"])


class BaselineMeasurement(NamedTuple):
    """A baseline model's measurement with how to name it."""
    label: str
    tail_weight: float
    conditions: tuple[ConditionSums, ...]


@dataclass(frozen=True)
class H3Result:
    """H3 numbers, figure data (fig1) and verdict."""
    context: AnalysisContext
    gradient_unit: str
    conditions: tuple[H3Condition, ...]        # sorted by λ; the first is λ = 0
    amplification: Interval | None             # ratio(largest λ) / ratio(λ = 0); None: see note
    amplification_unbounded: bool              # None because the tail-aware ratio is unbounded
    amplification_note: str                    # why amplification is None ("" otherwise)
    theoretical_amplification: float           # N / k
    amplification_share: float | None          # amplification / (N/k)
    tail_gain: Interval | None                 # tail g(largest λ) / tail g(λ = 0)
    tail_gain_theory: float                    # 1 − λ + λ·N/k (exact without patch interaction)
    paired: H3Paired | None
    verdict: Verdict
    verdict_reason: str

    @property
    def tail_aware(self) -> H3Condition:
        """The condition with the largest λ (the amplification's numerator)."""
        return self.conditions[-1]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["verdict"] = self.verdict.value
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "H3Result":
        def interval(v):
            return None if v is None else Interval(**v)
        return cls(
            context=AnalysisContext(**d["context"]), gradient_unit=d["gradient_unit"],
            conditions=tuple(H3Condition.from_dict(c) for c in d["conditions"]),
            amplification=interval(d["amplification"]),
            amplification_unbounded=d["amplification_unbounded"],
            amplification_note=d["amplification_note"],
            theoretical_amplification=d["theoretical_amplification"],
            amplification_share=d["amplification_share"],
            tail_gain=interval(d["tail_gain"]), tail_gain_theory=d["tail_gain_theory"],
            paired=None if d["paired"] is None else H3Paired.from_dict(d["paired"]),
            verdict=Verdict(d["verdict"]), verdict_reason=d["verdict_reason"])

    def _table_rows(self) -> list[tuple[str, ...]]:
        rows = []
        for c in self.conditions:
            ratio = "—" if c.ratio is None else f"**{c.ratio.format('{:.2f}×')}**"
            gini_text = "—" if c.gini is None else c.gini.format("{:.3f}")
            rows.append((f"**{c.label}**", c.tail_gradient.format(), c.nontail_gradient.format(),
                         ratio, gini_text))
        return rows

    def _amplification_lines(self) -> list[str]:
        c, lam = self.context, self.tail_aware.tail_weight
        theory = f"theoretical N/k = {c.n_patches}/{c.k} = {self.theoretical_amplification:.3g}×"
        if self.amplification is None:
            amp = (f"- **Gradient amplification** (λ={lam:g} vs λ=0): undefined — "
                   f"{self.amplification_note}; {theory}")
        else:
            amp = (f"- **Gradient amplification** (ratio at λ={lam:g} / ratio at λ=0): "
                   f"**{self.amplification.format('{:.3g}×')}**, {theory}, measured = "
                   f"{self.amplification_share:.0%} of theoretical")
        gain = ("undefined (tail gradient at λ=0 is exactly 0)" if self.tail_gain is None
                else self.tail_gain.format("{:.3g}×"))
        return [amp, f"- Tail gradient gain (tail gradient at λ={lam:g} / at λ=0): {gain}; "
                     f"exact for non-interacting patches: 1 − λ + λ·N/k = {self.tail_gain_theory:.3g}×"]

    def _paired_rows(self) -> list[tuple[str, str, str, str]]:
        def fmt(name: str, stat: PairedStat | None) -> tuple[str, str, str, str]:
            if stat is None:
                return (name, "—", "—", "undefined (see note)")
            return (name, *(i.format("{:.3g}") for i in (stat.baseline, stat.candidate,
                                                         stat.difference)))
        rows = [fmt(f"Ratio, {c.label}", s) for c, s in zip(self.conditions, self.paired.ratio)]
        rows.append(fmt("Gradient amplification", self.paired.amplification))
        return rows

    def markdown(self) -> str:
        c = self.context
        interval = (f"95% percentile bootstrap over images, B = {c.n_boot}" if c.n_boot
                    else "no bootstrap intervals")
        parts = [markdown_table(["Condition", "Tail gradient", "Non-tail gradient", "Ratio", "Gini"],
                                self._table_rows()), "", *self._amplification_lines(), ""]
        if self.paired is not None:
            p = self.paired
            parts += [f"Paired with the baseline ({p.baseline_checkpoint}) on the same images "
                      "and resamples, each model with its own tail of k patches:", "",
                      markdown_table(["measurement", f"baseline (λ = {p.baseline_tail_weight:g})",
                                      "candidate", "difference (candidate − baseline)"],
                                     self._paired_rows()), ""]
            if p.note:
                parts += [f"Note: {p.note}", ""]
        parts += [f"**Verdict: {self.verdict.value}** — {self.verdict_reason}", ""]
        notes = "; ".join(n for x in self.conditions for n in (x.ratio_note, x.gini_note) if n)
        parts.append(
            f"Context: checkpoint {c.checkpoint}; category {c.category}, split {c.split}, "
            f"{c.n_images} images; grid {c.grid_h}×{c.grid_w} (N = {c.n_patches}), tail k = {c.k} "
            f"per image (r = {c.top_k_ratio:g}; the top-k patches by the checkpoint's NLL); "
            f"seed {c.seed}; {interval}. Gradient unit: {self.gradient_unit}."
            + (f" Notes: {notes}." if notes else ""))
        return "\n".join(parts)

    def csv_rows(self) -> list[dict]:
        def row(measurement: str, value: Interval | float | str | None, tail_weight=None,
                detail: str = "") -> dict:
            base = {"measurement": measurement, "tail_weight": tail_weight}
            if isinstance(value, Interval):
                return {**base, "estimate": value.estimate, "ci_low": value.low,
                        "ci_high": value.high, "detail": detail or value.note}
            return {**base, "estimate": value, "ci_low": None, "ci_high": None, "detail": detail}

        rows = []
        for c in self.conditions:
            lam = c.tail_weight
            rows += [row("tail_gradient", c.tail_gradient, lam, "mean ‖∂L/∂x‖ per tail patch"),
                     row("nontail_gradient", c.nontail_gradient, lam,
                         "mean ‖∂L/∂x‖ per non-tail patch"),
                     row("ratio", c.ratio, lam, c.ratio_note),
                     row("gini", c.gini, lam, c.gini_note)]
        lam = self.tail_aware.tail_weight
        rows += [row("amplification", self.amplification, lam, self.amplification_note),
                 row("theoretical_amplification", self.theoretical_amplification, lam, "N/k"),
                 row("amplification_share", self.amplification_share, lam,
                     "amplification / (N/k)"),
                 row("tail_gain", self.tail_gain, lam, "tail gradient at λ / at λ = 0"),
                 row("tail_gain_theory", self.tail_gain_theory, lam,
                     "1 − λ + λ·N/k (non-interacting patches)")]
        if self.paired is not None:
            p = self.paired
            named = [("paired_ratio", c.tail_weight, s) for c, s in zip(self.conditions, p.ratio)]
            named.append(("paired_amplification", lam, p.amplification))
            for name, weight, stat in named:
                if stat is None:
                    rows.append(row(name, None, weight, p.note))
                    continue
                for role in ("baseline", "candidate", "difference"):
                    rows.append(row(f"{name}_{role}", getattr(stat, role), weight))
        rows.append(row("verdict", self.verdict.value, None, self.verdict_reason))
        return rows


# ---------------------------------------------------------------------------------------------
# Verdict

def verdict(amplification: float | None, n_patches: int, k: int, unbounded: bool = False,
            note: str = "") -> tuple[Verdict, str]:
    """SPEC §4 H3 verdict with a one-line reason.

    Args:
        amplification: measured ratio(tail-aware) / ratio(mean-only); None when undefined.
        unbounded: ``amplification`` is None because the tail-aware non-tail gradient is exactly
            0 (concentration is total: counts as ≥ any threshold).
        note: why ``amplification`` is None.
    """
    theory = n_patches / k
    need = SUPPORT_SHARE * theory
    bar = f"{SUPPORT_SHARE:g}·N/k = {need:.3g}× (N/k = {n_patches}/{k} = {theory:.3g}×)"
    if amplification is None:
        if unbounded:
            return Verdict.SUPPORTED, f"amplification unbounded ≥ {bar}: {note}"
        return Verdict.NOT_SUPPORTED, f"amplification undefined: {note}"
    text = f"gradient amplification {amplification:.3g}× ({amplification / theory:.0%} of N/k)"
    if amplification >= need:
        return Verdict.SUPPORTED, f"{text} ≥ {bar}"
    if amplification > PARTIAL_AMPLIFICATION:
        return Verdict.PARTIAL, f"{text} > {PARTIAL_AMPLIFICATION:g}× but < {bar}"
    return Verdict.NOT_SUPPORTED, f"{text} ≤ {PARTIAL_AMPLIFICATION:g}× (SUPPORTED needs ≥ {bar})"


# ---------------------------------------------------------------------------------------------
# Summary

def _amplification_note(mean_only: ConditionSums, tail_aware: ConditionSums) -> str:
    """Why ratio(tail-aware) / ratio(mean-only) is undefined ("" when it is defined)."""
    if mean_only.ratio_note():
        return f"mean-only ratio undefined ({mean_only.ratio_note()})"
    if mean_only.tail_sum.sum() == 0:
        return "mean-only tail gradient is exactly 0: its ratio is 0"
    if tail_aware.ratio_note():
        return f"tail-aware ratio undefined ({tail_aware.ratio_note()})"
    return ""


def _amplification(mean_only: ConditionSums, tail_aware: ConditionSums):
    return lambda idx: tail_aware.ratio(idx) / mean_only.ratio(idx)


def _statistics(conditions: Sequence[ConditionSums], prefix: str) -> dict:
    """Named bootstrap statistics of one model: per condition i tail/nontail means, ratio and
    Gini (when defined), and amplification and tail gain (when defined)."""
    stats = {}
    for i, c in enumerate(conditions):
        stats[f"{prefix}tail_{i}"] = c.tail_mean
        stats[f"{prefix}nontail_{i}"] = c.nontail_mean
        if not c.ratio_note():
            stats[f"{prefix}ratio_{i}"] = c.ratio
        if not np.isnan(c.gini).all():
            stats[f"{prefix}gini_{i}"] = c.gini_mean
    mean_only, tail_aware = conditions[0], conditions[-1]
    if not _amplification_note(mean_only, tail_aware):
        stats[f"{prefix}amplification"] = _amplification(mean_only, tail_aware)
    if mean_only.tail_sum.sum() > 0:
        stats[f"{prefix}tail_gain"] = lambda idx: tail_aware.tail_mean(idx) / mean_only.tail_mean(idx)
    return stats


def _paired(cand: Sequence[ConditionSums], base: BaselineMeasurement,
            intervals: dict[str, Interval]) -> H3Paired:
    def pair(name: str) -> PairedStat | None:
        if f"difference_{name}" not in intervals:
            return None
        return PairedStat(intervals[f"baseline_{name}"], intervals[name],
                          intervals[f"difference_{name}"])
    notes = []
    for model, conditions in (("candidate", cand), ("baseline", base.conditions)):
        notes += [f"{model}: {c.ratio_note()}" for c in conditions if c.ratio_note()]
        amp_note = _amplification_note(conditions[0], conditions[-1])
        if amp_note:
            notes.append(f"{model} amplification: {amp_note}")
    return H3Paired(base.label, base.tail_weight,
                    tuple(pair(f"ratio_{i}") for i in range(len(cand))), pair("amplification"),
                    "; ".join(dict.fromkeys(notes)))


def _condition(c: ConditionSums, i: int, intervals: dict[str, Interval]) -> H3Condition:
    n = len(c.tail_sum)
    return H3Condition(
        c.tail_weight, intervals[f"tail_{i}"], intervals[f"nontail_{i}"],
        intervals.get(f"ratio_{i}"), intervals.get(f"gini_{i}"), c.ratio_note(), c.gini_note(),
        tuple(tuple(float(v) for v in row) for row in c.map_sum / n),
        tuple(float(v) for v in c.tail_sum / c.k),
        tuple(float(v) for v in c.nontail_sum / (c.n_patches - c.k)))


def summarise(cand: Sequence[ConditionSums], context: AnalysisContext,
              baseline: BaselineMeasurement | None = None) -> H3Result:
    """The H3 result of measured conditions (``cand[0]`` at λ = 0, sorted by λ), bootstrapped
    with ``context.n_boot`` resamples seeded by ``context.seed``.

    Raises:
        MechanismError: if the first condition is not λ = 0, or the baseline was measured on
            other conditions or another number of images.
    """
    lambdas = [c.tail_weight for c in cand]
    if lambdas[0] != 0.0 or lambdas != sorted(lambdas) or len(lambdas) < 2:
        raise MechanismError(f"H3 needs conditions sorted by λ from λ = 0, got {lambdas}")
    n = len(cand[0].tail_sum)
    stats = _statistics(cand, "")
    if baseline is not None:
        if [c.tail_weight for c in baseline.conditions] != lambdas or \
                len(baseline.conditions[0].tail_sum) != n:
            raise MechanismError("the baseline was measured on other conditions or images")
        base_stats = _statistics(baseline.conditions, "baseline_")
        for name in [s for s in stats if s.startswith(("ratio_", "amplification"))]:
            if f"baseline_{name}" in base_stats:
                stats[f"baseline_{name}"] = base_stats[f"baseline_{name}"]
                stats[f"difference_{name}"] = \
                    lambda idx, c=stats[name], b=base_stats[f"baseline_{name}"]: c(idx) - b(idx)
    intervals = bootstrap(stats, n, context.n_boot, context.seed)

    mean_only, tail_aware = cand[0], cand[-1]
    amplification = intervals.get("amplification")
    amp_note = _amplification_note(mean_only, tail_aware)
    unbounded = amplification is None and not mean_only.ratio_note() and \
        mean_only.tail_sum.sum() > 0 and tail_aware.ratio_unbounded
    theory = context.n_patches / context.k
    lam = tail_aware.tail_weight
    decision, reason = verdict(None if amplification is None else amplification.estimate,
                               context.n_patches, context.k, unbounded, amp_note)
    return H3Result(
        context=context, gradient_unit=GRADIENT_UNIT,
        conditions=tuple(_condition(c, i, intervals) for i, c in enumerate(cand)),
        amplification=amplification, amplification_unbounded=unbounded,
        amplification_note=amp_note, theoretical_amplification=theory,
        amplification_share=None if amplification is None else amplification.estimate / theory,
        tail_gain=intervals.get("tail_gain"), tail_gain_theory=1.0 - lam + lam * theory,
        paired=None if baseline is None else _paired(cand, baseline, intervals),
        verdict=decision, verdict_reason=reason)


# ---------------------------------------------------------------------------------------------
# Analysis

def run(detector: Detector, data_root: str | Path, category: str, cfg: H3Config = H3Config(),
        baseline: Detector | None = None, cache_dir: Path | None | str = "default",
        progress: bool = True) -> H3Result:
    """Run H3 on the training images of ``category``.

    The baseline is measured with the same λ conditions and k, its own tail (top-k by its own
    NLL), on the analysed checkpoint's features when both share a backbone.

    Args:
        detector: the analysed checkpoint.
        baseline: a (λ = 0) checkpoint with the same grid; adds the paired table.
        cache_dir: feature cache (``"default"``, a folder, or ``None`` for none).

    Raises:
        MechanismError: for missing data, k = N (no non-tail patches), a baseline on another
            grid, or non-finite NLLs.
    """
    ckpt = detector.ckpt
    h, w, r, k = tail_setup(ckpt, cfg.top_k_ratio, "H3", baseline.ckpt if baseline is not None else None)
    n_patches = h * w
    samples = read_split(data_root, category, "train")[:cfg.max_images]
    features = detector.features(samples, cache_dir, progress)
    cand = measure(detector.flow, features, cfg.lambdas, r, cfg.batch_size, progress)
    base = None
    if baseline is not None:
        if baseline.ckpt.backbone != ckpt.backbone:
            features = baseline.features(samples, cache_dir, progress)
        base = BaselineMeasurement(
            checkpoint_label(baseline.ckpt), baseline.ckpt.loss.tail_weight,
            measure(baseline.flow, features, cfg.lambdas, r, cfg.batch_size, progress,
                    "H3 gradients (baseline)"))
    context = AnalysisContext(checkpoint_label(ckpt), category, "train", len(samples), h, w,
                              n_patches, k, float(r), cfg.seed, cfg.n_boot)
    return summarise(cand, context, base)
