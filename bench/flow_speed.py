"""Benchmark: one flow training epoch on cached features, previous default vs today's, idle and busy.

    python bench/flow_speed.py [--images 200] [--repeats 3] [--threads 2]

Both flows train through ``mechanism.train.fit.fit_flow`` (the real loop: Tail-Aware Loss
λ = 0.7, r = 2%, AdamW, batch 16) on the same synthetic features ``(N, 40, 28, 28)``, the default
backbone's grid (an epoch's cost does not depend on the values). The reference is the default
before the joint subnet, ``FlowConfig(subnets="separate", hidden=128)``, still built for older
checkpoints. Each timing is the second epoch of a two-epoch training; the configs alternate
``--repeats`` times so load changes hit both alike; the table gives the median and the range.

Also printed: multiply-adds per epoch (torch's flop counter, forward + backward), the machine's
matmul throughput (2-thread 1024³ sgemm) and the floor they imply, and the epoch beside one busy
core (the bench starts a spinning process and stops it) with the default thread policy
(``mechanism.device.CpuThreads``: threads follow the idle cores) and with the count fixed.
Quote ratios with the load average printed beside them: the machine is shared.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time

import torch


def spin() -> None:
    """Keep one core busy until terminated."""
    while True:
        pass


def matmul_gflops(threads: int) -> float:
    """Median 1024³ sgemm throughput in GFLOP/s at ``threads`` threads."""
    torch.set_num_threads(threads)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    times = []
    for _ in range(12):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * 1024 ** 3 / statistics.median(times[2:]) / 1e9


def epoch_flops(cfg, images: int, batch: int) -> float:
    """FLOPs (2 per multiply-add) of one epoch's forward + backward passes."""
    from torch.utils.flop_counter import FlopCounterMode

    from mechanism.flow import PatchFlow, patch_nll
    flow = PatchFlow(40, 28, 28, cfg)
    with FlopCounterMode(display=False) as counter:
        patch_nll(flow(torch.randn(batch, 40, 28, 28))).mean().backward()
    return counter.get_total_flops() * images / batch


def epoch_seconds(features: torch.Tensor, cfg, threads: int, fixed: bool) -> float:
    """Wall seconds of the second epoch of a two-epoch ``fit_flow``."""
    from mechanism.device import THREADS_ENV
    from mechanism.train.config import TrainConfig
    from mechanism.train.fit import fit_flow
    from mechanism.train.loss import TailLossConfig
    torch.set_num_threads(threads)
    os.environ[THREADS_ENV] = str(threads) if fixed else "auto"
    _, log = fit_flow(features, cfg, TailLossConfig(), TrainConfig(epochs=2), progress=False)
    return log[-1].seconds


def spread(times: list[float]) -> str:
    return f"{statistics.median(times):6.2f} s  [{min(times):.2f}, {max(times):.2f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    from mechanism.flow import FlowConfig

    configs = {"reference (separate, 128)": FlowConfig(subnets="separate", hidden=128),
               f"default ({FlowConfig().subnets}, {FlowConfig().hidden})": FlowConfig()}
    features = torch.randn(args.images, 40, 28, 28, generator=torch.Generator().manual_seed(0))
    load = [os.getloadavg()[0]]
    gflops = matmul_gflops(args.threads)
    idle: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(args.repeats):
        for name, cfg in configs.items():
            idle[name].append(epoch_seconds(features, cfg, args.threads, fixed=True))
    load.append(os.getloadavg()[0])

    spinner = multiprocessing.get_context("spawn").Process(target=spin, daemon=True)
    spinner.start()
    time.sleep(2.0)
    try:
        default = FlowConfig()
        busy = {policy: [epoch_seconds(features, default, args.threads, fixed)
                         for _ in range(args.repeats)]
                for policy, fixed in (("threads follow idle cores (default)", False),
                                      (f"{args.threads} threads fixed", True))}
    finally:
        spinner.terminate()
        spinner.join()
    load.append(os.getloadavg()[0])

    print(f"bench/flow_speed.py  {args.images} images × (40, 28, 28), batch 16, "
          f"{args.threads} threads, {args.repeats} repeats")
    print(f"load average (1 min) before / after idle runs / after busy runs: "
          f"{' / '.join(f'{v:.2f}' for v in load)} on {os.cpu_count()} cores")
    print(f"matmul throughput (1024³ sgemm): {gflops:.0f} GFLOP/s")
    ref = statistics.median(idle[next(iter(configs))])
    print(f"\n{'flow':<28} {'s/epoch median [range]':>26} {'GFLOP/epoch':>12} {'GFLOP/s':>8} "
          f"{'floor s':>8} {'speed-up':>9}")
    for name, cfg in configs.items():
        flops = epoch_flops(cfg, args.images, 16)
        med = statistics.median(idle[name])
        print(f"{name:<28} {spread(idle[name]):>26} {flops / 1e9:>12.1f} {flops / med / 1e9:>8.1f} "
              f"{flops / gflops / 1e9:>8.2f} {ref / med:>8.2f}×")
    base = statistics.median(idle[next(reversed(configs))])
    print(f"\nbeside one busy core (default flow; idle epoch {base:.2f} s):")
    for policy, times in busy.items():
        print(f"  {policy:<38} {spread(times)}   slowdown {statistics.median(times) / base:.2f}×")


if __name__ == "__main__":
    main()
