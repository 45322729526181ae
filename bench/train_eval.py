"""Benchmark: feature extraction, flow training on cached vs uncached features, evaluation, peak RSS.

    python bench/train_eval.py [--data data/demo] [--category brick] [--epochs 3] [--threads 2]

Generates the demo category into a temporary folder when --data is not given. Prints one table;
quote its ratios together with the load average it prints (the machine is shared).
"""
from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--category", default="brick")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from mechanism.backbone.features import cached_features
    from mechanism.backbone.model import BackboneConfig, load_backbone
    from mechanism.data.demo import generate_demo
    from mechanism.data.images import load_image
    from mechanism.data.mvtec import read_split
    from mechanism.device import resolve_device
    from mechanism.eval.detector import load_detector
    from mechanism.eval.evaluate import evaluate_detector
    from mechanism.flow import FlowConfig, PatchFlow, patch_nll
    from mechanism.train.config import TrainConfig
    from mechanism.train.fit import train_detector
    from mechanism.train.loss import TailLossConfig, tail_aware_loss

    device = resolve_device(args.device)
    work = Path(tempfile.mkdtemp(prefix="bench-train-eval-"))
    data = args.data
    if data is None:
        data = work / "demo"
        generate_demo(data, categories=(args.category,))
    cache = work / "cache"
    train = read_split(data, args.category, "train")
    load_before = os.getloadavg()
    rows: list[tuple[str, str]] = []

    backbone = load_backbone(BackboneConfig(), device)
    start = time.perf_counter()
    cached_features(backbone, train, cache, device=device, progress=False)
    extract = time.perf_counter() - start
    rows.append(("feature extraction (decode + backbone)", f"{1000 * extract / len(train):.1f} ms/image"))

    train_cfg = TrainConfig(epochs=args.epochs)
    start = time.perf_counter()
    run = train_detector(data, args.category, work / "model.pt", train_cfg=train_cfg, device=device,
                         cache_dir=cache, progress=False)
    cached_epoch = sum(r.seconds for r in run.log) / len(run.log)
    rows.append(("flow epoch, cached features", f"{cached_epoch:.2f} s/epoch ({len(train)} images)"))

    # one epoch that re-extracts features for every batch, as a detector without a cache does
    flow = PatchFlow(backbone.out_channels, *backbone.grid(), FlowConfig()).to(device)
    opt = torch.optim.AdamW(flow.parameters(), lr=train_cfg.lr)
    start = time.perf_counter()
    for i in range(0, len(train), train_cfg.batch_size):
        images = torch.stack([torch.from_numpy(load_image(s.path, 224))
                              for s in train[i:i + train_cfg.batch_size]]).to(device)
        with torch.no_grad():
            x = backbone(images)
        loss = tail_aware_loss(patch_nll(flow(x)), TailLossConfig())
        opt.zero_grad()
        loss.backward()
        opt.step()
    uncached_epoch = time.perf_counter() - start
    rows.append(("flow epoch, uncached (backbone every batch)", f"{uncached_epoch:.2f} s/epoch"))
    rows.append(("uncached / cached epoch", f"{uncached_epoch / cached_epoch:.1f}×"))

    detector = load_detector(run.checkpoint, device)
    test = read_split(data, args.category, "test")
    for label, cache_dir in (("evaluation, features uncached", None), ("evaluation, features cached", cache)):
        if cache_dir is not None:
            cached_features(detector.backbone, test, cache_dir, device=device, progress=False)
        start = time.perf_counter()
        evaluate_detector(detector, data, args.category, cache_dir=cache_dir, progress=False)
        rows.append((label, f"{time.perf_counter() - start:.1f} s ({len(test)} images)"))

    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append(("peak RSS", f"{rss_mib:.0f} MiB"))
    width = max(len(k) for k, _ in rows)
    print(f"bench/train_eval.py  category={args.category} device={device} threads={args.threads} "
          f"epochs={args.epochs}")
    print(f"load average before / after: {load_before[0]:.2f} / {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")


if __name__ == "__main__":
    main()
