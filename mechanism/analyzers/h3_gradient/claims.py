"""H3's identity checks and claims (SPEC §7.3).

Identities (``identities``), measured on the gradient that reaches each patch through its own
path only (``PatchFlow.own_paths_only``; for non-interacting patches that is the whole
gradient): the tail gain ``1 − λ + λN/k`` at every λ > 0, the amplification
``1 + λN / ((1 − λ)k)`` at every 0 < λ < 1, and zero non-tail gradient at λ = 1. They check the
loss and the measurement; they are never evidence.

Claims (``evidence``):
* **H3.survives_interaction** — with patches that interact, the measured amplification at the
  checkpoint's own λ is ≥ 0.5 × its identity. Only for 0 < λ < 1: at λ = 1 the identity is
  unbounded (any finite bar holds trivially) and at λ = 0 there is no concentration to survive;
  without interaction the amplification *is* the identity. The claim is left out then.
* **H3.training** — training with the tail-aware loss shrinks the NLL tail of normal patches:
  Δ (candidate − baseline checkpoint) of (mean top-k NLL − mean NLL) on good test images < 0.
  A claim about what training changes: it needs ≥ 3 training seeds.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from mechanism.analyzers.h3_gradient.gradients import ConditionSums
from mechanism.analyzers.h3_gradient.result import (SURVIVING_SHARE, H3Condition,
                                                    amplification_identity, tail_gain_identity)
from mechanism.stats.bootstrap import PairedStat
from mechanism.stats.evidence import Claim, Evidence, Identity

NOT_SEPARABLE = "k×k subnets mix neighbouring patches: their own paths cannot be separated"
SURVIVES_READING = ("most of the amplification is the loss's arithmetic (the identity); the claim "
                    "checks that interaction between patches does not undo it, not that "
                    "concentration helps detection")
TRAINING_READING = ("the tail-aware loss minimises the top-k NLL of training patches; this "
                    "measures whether that carries over to held-out good images")


def claim_weight(lambdas: Sequence[float], own_tail_weight: float) -> float:
    """The λ of H3.survives_interaction: the checkpoint's own when strictly inside (0, 1) and
    measured, else the largest measured λ."""
    return own_tail_weight if 0.0 < own_tail_weight < 1.0 and own_tail_weight in lambdas \
        else max(lambdas)


def identities(direct: Sequence[ConditionSums] | None, lambdas: Sequence[float],
               n_over_k: float) -> tuple[Identity, ...]:
    """The identity checks on own-path gradients ``direct`` (same λ order as ``lambdas``; None:
    not separable, the checks are listed as not measured)."""
    out = []
    every = np.arange(len(direct[0].tail_sum)) if direct is not None else None
    for i, lam in enumerate(lambdas):
        if lam == 0.0:
            continue
        base, cond = (direct[0], direct[i]) if direct is not None else (None, None)
        measured = None if direct is None or base.tail_sum.sum() == 0 else \
            cond.tail_mean(every) / base.tail_mean(every)
        out.append(Identity(f"H3.tail_gain(λ={lam:g})",
                            f"tail gradient at λ = {lam:g} / at λ = 0, own paths: 1 − λ + λN/k",
                            tail_gain_identity(lam, n_over_k), measured,
                            NOT_SEPARABLE if direct is None else ""))
        expected = amplification_identity(lam, n_over_k)
        if expected is not None:
            ok = direct is not None and not base.ratio_note() and not cond.ratio_note()
            out.append(Identity(f"H3.amplification(λ={lam:g})",
                                f"ratio at λ = {lam:g} / ratio at λ = 0, own paths: 1 + λN/((1 − λ)k)",
                                expected, cond.ratio(every) / base.ratio(every) if ok else None,
                                NOT_SEPARABLE if direct is None else
                                "" if ok else "a ratio is undefined"))
        else:
            share = None if direct is None else cond.nontail_share(every)
            out.append(Identity("H3.own_path_leakage(λ=1)",
                                "share of Σg on non-tail patches at λ = 1, own paths: 0",
                                0.0, None if share is None or np.isnan(share) else share,
                                NOT_SEPARABLE if direct is None else ""))
    return tuple(out)


def evidence(conditions: Sequence[H3Condition], own_tail_weight: float, n_over_k: float,
             interact: bool, tail_excess: PairedStat | None, n_train: int, n_test: int,
             n_pairs: int, ids: tuple[Identity, ...], n_seeds: int = 1) -> Evidence:
    """H3's claims — survives_interaction on ``n_seeds`` training seeds' checkpoints, training
    over ``n_pairs`` seed pairs — and the identity checks ``ids``."""
    claims = []
    lam = claim_weight([c.tail_weight for c in conditions], own_tail_weight)
    if interact and 0.0 < lam < 1.0:
        cond = next(c for c in conditions if c.tail_weight == lam)
        identity = amplification_identity(lam, n_over_k)
        bar, what = SURVIVING_SHARE * identity, f"{SURVIVING_SHARE:g} × identity {identity:.4g}"
        claims.append(Claim.of("H3.survives_interaction",
                               f"amplification at λ = {lam:g} (patches interact)", cond.amplification,
                               "≥", bar, n_seeds, n_train,
                               note="; ".join(n for n in (f"threshold {what}", SURVIVES_READING,
                                                          cond.amplification_note) if n)))
    claims.append(Claim.of(
        "H3.training", "Δ (mean top-k NLL − mean NLL), tail-aware − baseline, good test images "
        "(nats/dim)", None if tail_excess is None else tail_excess.difference, "<", 0.0, n_pairs, n_test,
        about_training=True,
        note="needs a λ = 0 baseline checkpoint (--baseline-ckpt)" if tail_excess is None else
        TRAINING_READING))
    return Evidence(tuple(claims), ids)
