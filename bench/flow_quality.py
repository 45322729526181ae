"""Benchmark: detection quality of the previous default training vs today's, over categories × seeds × λ.

    python bench/flow_quality.py [--data DIR] [--categories brick,grass,gravel] [--seeds 0,1,2]
                                 [--tail-weights 0,0.7] [--epochs 12]
                                 [--candidate hidden=64,precision=fp32 ...] [--threads 2]

The reference is the default before the joint subnet and mixed precision: two subnets of hidden
width 128 (``FlowConfig(subnets="separate", hidden=128)``) trained in float32
(``TrainConfig(precision="fp32")``); it stays buildable because older checkpoints use it. Each
candidate (today's defaults ``FlowConfig()``, ``TrainConfig()``, plus any
``--candidate KEY=VALUE[,KEY=VALUE]`` over fields of either) is trained with the same loss
(each λ of ``--tail-weights`` at r = 2%), optimiser, epochs and seed as the reference, on
features cached once per category, and evaluated with ``mechanism evaluate``'s defaults.

Prints per category, λ and config: Image AUROC and Pixel AP as mean ± sd over seeds, the mean
training s/epoch, and the paired difference candidate − reference (mean and the range over
seeds) beside the reference's seed sd, so "within seed noise" can be read off the table.
Without ``--data`` the demo categories are generated into a temporary folder.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from dataclasses import fields, replace
from pathlib import Path

import torch


def parse_config(text: str, flow, train):
    """``"hidden=64,precision=fp32"`` → ``(flow, train)`` with those fields replaced (types
    from the defaults); a key names a field of ``FlowConfig`` or of ``TrainConfig``."""
    changes: tuple[dict, dict] = ({}, {})
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        owners = [i for i, base in enumerate((flow, train)) if key in {f.name for f in fields(base)}]
        if len(owners) != 1:
            raise SystemExit(f"error: {key!r} is not a field of FlowConfig or TrainConfig")
        kind = type(getattr((flow, train)[owners[0]], key))
        changes[owners[0]][key] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    return replace(flow, **changes[0]), replace(train, **changes[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--categories", default="brick,grass,gravel")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--tail-weights", default="0,0.7", help="λ values, each trained at r = 2%%")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--candidate", action="append", default=[],
                    help="extra config KEY=VALUE,... over FlowConfig and TrainConfig fields")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from mechanism.data.demo import generate_demo
    from mechanism.eval.detector import load_detector
    from mechanism.eval.evaluate import evaluate_detector
    from mechanism.flow import FlowConfig
    from mechanism.train.config import TrainConfig
    from mechanism.train.fit import train_detector
    from mechanism.train.loss import TailLossConfig

    categories = args.categories.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    lambdas = [float(v) for v in args.tail_weights.split(",")]
    configs = {"reference (separate, fp32)": (FlowConfig(subnets="separate", hidden=128),
                                              TrainConfig(precision="fp32")),
               "default": (FlowConfig(), TrainConfig())}
    configs.update({c: parse_config(c, FlowConfig(), TrainConfig()) for c in args.candidate})
    work = Path(tempfile.mkdtemp(prefix="bench-flow-quality-"))
    data = args.data
    if data is None:
        data = work / "demo"
        generate_demo(data, categories=tuple(categories))
    load_before = os.getloadavg()
    results: dict[tuple[str, float, str], list[tuple[float, float, float]]] = {}
    threads_seen: set[int] = set()
    for category in categories:
        for seed in seeds:
            for lam in lambdas:
                for name, (flow_cfg, train_cfg) in configs.items():   # interleaved: load hits all alike
                    out = work / "runs" / category / f"{seed}-{len(results)}.pt"
                    run = train_detector(data, category, out, flow_cfg=flow_cfg,
                                         loss_cfg=TailLossConfig(tail_weight=lam),
                                         train_cfg=replace(train_cfg, epochs=args.epochs, seed=seed),
                                         cache_dir=work / "cache", progress=False)
                    m = evaluate_detector(load_detector(out), data, category, cache_dir=work / "cache",
                                          progress=False).metrics
                    epoch_s = statistics.mean(e.seconds for e in run.log)
                    threads_seen.update(e.threads for e in run.log)
                    results.setdefault((category, lam, name), []).append((m.image_auroc, m.pixel_ap, epoch_s))
                    print(f"  {category} λ={lam:g} seed {seed} {name}: Image AUROC {m.image_auroc:.4f} "
                          f"Pixel AP {m.pixel_ap:.4f} ({epoch_s:.2f} s/epoch)", flush=True)

    print(f"\nbench/flow_quality.py  {len(seeds)} seeds × {len(categories)} categories, r = 2%, "
          f"{args.epochs} epochs, threads per epoch seen: {sorted(threads_seen)} "
          f"(MECHANISM_THREADS={os.environ.get('MECHANISM_THREADS', 'unset')})")
    print(f"load average before / after: {load_before[0]:.2f} / {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores")
    ref_name = next(iter(configs))
    print(f"{'category':<8} {'λ':>4} {'config':<28} {'Image AUROC':>15} {'Pixel AP':>15} {'s/epoch':>8}"
          f"   Δ AUROC mean [range]       Δ AP mean [range]")
    for category, lam in ((c, lam) for c in categories for lam in lambdas):
        ref = results[(category, lam, ref_name)]
        for name in configs:
            rows = results[(category, lam, name)]
            cells = []
            for j in (0, 1):
                vals = [r[j] for r in rows]
                cells.append(f"{statistics.mean(vals):.4f} ± {statistics.stdev(vals) if len(vals) > 1 else 0:.4f}")
            line = f"{category:<8} {lam:>4g} {name:<28} {cells[0]:>15} {cells[1]:>15} {statistics.mean(r[2] for r in rows):>8.2f}"
            if name != ref_name:
                for j in (0, 1):
                    d = [r[j] - q[j] for r, q in zip(rows, ref)]
                    line += f"   {statistics.mean(d):+.4f} [{min(d):+.4f}, {max(d):+.4f}]"
            print(line)


if __name__ == "__main__":
    main()
