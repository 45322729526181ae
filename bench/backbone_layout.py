"""Benchmark: the backbone's feature extraction in channels-last layout (the default) vs NCHW.

    python bench/backbone_layout.py [--images 8] [--repeats 3] [--threads 2]

For the default backbone (224×224, stage 2) and the small-defect recipe (224×544, stages 2 + 3)
it times ``Backbone.forward`` on random images in each layout (``Backbone.set_layout``), the
two alternating ``--repeats`` times after one warm-up, and prints the median ms/image with the
range, the ratio, and how far the channels-last features lie from the NCHW ones (max |Δ| and
max |Δ| / max |feature|). Quote the ratio with the load average printed beside it.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from mechanism.backbone.model import BackboneConfig, load_backbone

CASES = {"default (224×224, stage 2)": BackboneConfig(),
         "recipe (224×544, stages 2+3)": BackboneConfig(layers=(2, 3), input_size=(224, 544))}


@torch.inference_mode()
def ms_per_image(backbone, images: torch.Tensor) -> float:
    start = time.perf_counter()
    backbone(images)
    return 1000 * (time.perf_counter() - start) / len(images)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load = [os.getloadavg()[0]]
    rows = []
    for name, cfg in CASES.items():
        backbone = load_backbone(cfg)
        images = torch.rand(args.images, 3, *cfg.input_shape, generator=torch.Generator().manual_seed(0))
        layouts = ("nchw", "channels_last")
        times = {layout: [] for layout in layouts}
        features = {}
        for layout in layouts:                        # warm-up and the features to compare
            with torch.inference_mode():
                features[layout] = backbone.set_layout(layout)(images)
        for _ in range(args.repeats):
            for layout in layouts:
                times[layout].append(ms_per_image(backbone.set_layout(layout), images))
        diff = (features["channels_last"] - features["nchw"]).abs().max().item()
        scale = features["nchw"].abs().max().item()
        rows.append((name, times, diff, scale))
    load.append(os.getloadavg()[0])
    print(f"bench/backbone_layout.py  {args.images} images, {args.threads} threads, {args.repeats} repeats; "
          f"load average (1 min) before / after: {load[0]:.2f} / {load[1]:.2f} on {os.cpu_count()} cores")
    for name, times, diff, scale in rows:
        med = {layout: statistics.median(t) for layout, t in times.items()}
        print(f"{name}:")
        for layout, t in times.items():
            print(f"  {layout:<14} {med[layout]:7.1f} ms/img  [{min(t):.1f}, {max(t):.1f}]")
        print(f"  NCHW / channels-last: {med['nchw'] / med['channels_last']:.2f}×; "
              f"features max |Δ| {diff:.2e} (max |feature| {scale:.2f}, relative {diff / scale:.1e})")


if __name__ == "__main__":
    main()
