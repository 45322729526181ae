"""Benchmark: the flow's scoring pass on a CPU, whole batches vs calls of at most
``CPU_FLOW_ROWS`` patch rows (what ``Detector.patch_scores`` does).

    python bench/flow_inference.py [--images 32] [--repeats 3] [--threads 2]

For the default flow (D = 40 on a 28×28 grid) and the small-defect recipe's (D = 152 on
28×68), with randomised weights, it times the float32 forward on random features in one call
per ``--images`` images and in calls of ``CPU_FLOW_ROWS // (H·W)`` images, alternating
``--repeats`` times after a warm-up, and prints the median ms/image with the range, the ratio
and whether the latents agree bit for bit. Quote the ratio with the load printed beside it.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from mechanism.eval.detector import CPU_FLOW_ROWS
from mechanism.flow import FlowConfig, PatchFlow

SHAPES = {"default (D 40, 28×28)": (40, 28, 28), "recipe (D 152, 28×68)": (152, 28, 68)}


@torch.no_grad()
def run(flow: PatchFlow, features: torch.Tensor, per_call: int) -> tuple[float, torch.Tensor]:
    """ms per image of the forward over ``features`` in calls of ``per_call`` images, and z."""
    start = time.perf_counter()
    z = torch.cat([flow(features[i:i + per_call]).z for i in range(0, len(features), per_call)])
    return 1000 * (time.perf_counter() - start) / len(features), z


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load = [os.getloadavg()[0]]
    lines = []
    for name, (dim, height, width) in SHAPES.items():
        torch.manual_seed(0)
        flow = PatchFlow(dim, height, width, FlowConfig()).eval()
        with torch.no_grad():
            for p in flow.parameters():
                p.normal_(0, 0.02)
        features = torch.randn(args.images, dim, height, width)
        splits = {"one call": args.images, "row budget": max(1, CPU_FLOW_ROWS // (height * width))}
        times = {split: [] for split in splits}
        latents = {split: run(flow, features, n)[1] for split, n in splits.items()}    # warm-up
        for _ in range(args.repeats):
            for split, n in splits.items():
                times[split].append(run(flow, features, n)[0])
        med = {split: statistics.median(t) for split, t in times.items()}
        lines.append(f"{name}:")
        lines += [f"  {split:<11} ({n:>2} images per call) {med[split]:6.2f} ms/img  "
                  f"[{min(times[split]):.2f}, {max(times[split]):.2f}]" for split, n in splits.items()]
        same = torch.equal(latents["one call"], latents["row budget"])
        lines.append(f"  one call / row budget: {med['one call'] / med['row budget']:.2f}×; "
                     f"latents {'bit-identical' if same else 'differ'}")
    load.append(os.getloadavg()[0])
    print(f"bench/flow_inference.py  {args.images} images, float32, {args.threads} threads, "
          f"{args.repeats} repeats, CPU_FLOW_ROWS {CPU_FLOW_ROWS}; load average (1 min) before / "
          f"after: {load[0]:.2f} / {load[1]:.2f} on {os.cpu_count()} cores")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
