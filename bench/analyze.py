"""Benchmark: ``analyze --hypothesis all`` on a checkpoint, divided by the floor.

    python bench/analyze.py --ckpt runs/brick/model.pt [--bootstrap 1000] [--threads 2]

Floor = one backbone + flow forward over the images the analyses read (train and test split)
plus one flow backward per batch. Both sides start with an empty feature cache. H4 must also
run the backbone on M augmented views of each of its training images (1 selection view + M − 1
reference views; H4 analyses the first 64 by default), which no cache can serve; the second floor
adds M backbone + flow forwards over those images. Prints the times, both ratios (target ≤ 1.5× against the first) and
the load average (the machine is shared).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", type=Path, required=True)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from mechanism.analyzers.h4_dilution import H4Config
    from mechanism.backbone.features import extract_features
    from mechanism.data.mvtec import read_split
    from mechanism.eval.detector import load_detector
    from mechanism.flow import patch_nll
    from mechanism.pipelines.analyze import HYPOTHESES, AnalysisSettings, analyze

    device = torch.device("cpu")
    det = load_detector(args.ckpt, device)
    root, cat = det.ckpt.data.root, det.ckpt.data.category
    train = read_split(root, cat, "train")
    samples = train + read_split(root, cat, "test")
    load_before = os.getloadavg()

    start = time.perf_counter()
    feats = extract_features(det.backbone, samples, progress=False)
    for i in range(0, len(feats), args.batch_size):
        x = feats[i:i + args.batch_size].clone().requires_grad_(True)
        patch_nll(det.flow(x)).sum().backward()
    floor = time.perf_counter() - start

    n_views, h4_train = H4Config().n_views, train[:H4Config().max_images]
    start = time.perf_counter()
    with torch.no_grad():
        for _ in range(n_views):
            views = extract_features(det.backbone, h4_train, progress=False)
            for i in range(0, len(views), args.batch_size):
                patch_nll(det.flow(views[i:i + args.batch_size]))
    views_floor = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        analyze(args.ckpt, HYPOTHESES, Path(tmp) / "out", device,
                AnalysisSettings(n_boot=args.bootstrap, batch_size=args.batch_size),
                cache_dir=Path(tmp) / "cache", progress=False)
        full = time.perf_counter() - start

    print(f"bench/analyze.py  ckpt={args.ckpt} images={len(samples)} grid={det.ckpt.grid} "
          f"threads={args.threads} bootstrap={args.bootstrap}")
    print(f"load average before / after: {load_before[0]:.2f} / {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"  floor (backbone + flow forward, one flow backward per batch)  {floor:6.1f} s")
    print(f"  analyze --hypothesis all                                       {full:6.1f} s")
    print(f"  ratio                                                          {full / floor:6.2f}×  (target ≤ 1.5×)")
    print(f"  H4's {n_views} augmented-view forwards over {len(h4_train)} train images           {views_floor:6.1f} s")
    print(f"  ratio to floor + H4 views                                      {full / (floor + views_floor):6.2f}×")


if __name__ == "__main__":
    main()
