"""Benchmark: the flow on a GPU against the CPU, and what mixed precision costs in metrics.

    python bench/gpu.py [--device cuda] [--quick] [--out gpu_bench.txt]

``bench/gpu.sh`` runs it on a GPU machine. Three parts, each a block of ``name  value`` rows:

* training: an epoch of the default flow (``FlowConfig()``, ``TrainConfig()``'s batch of 16) on
  synthetic features ``(200, 40, 28, 28)`` through ``fit_flow`` (6 epochs on ``--device``, 2 on
  the CPU with torch's default threads), seconds: the median of the epochs after the first,
  which also pays for the warm-up and is printed beside it; and the same under
  ``torch.autocast`` (bfloat16, float16) around the whole ``fit_flow`` loop (forward, loss,
  backward, AdamW step; no GradScaler). Every run is ``TrainConfig(precision="fp32")``, so
  the float32 rows are float32 and autocast is the bench's own (``TrainConfig()``'s default
  ``bf16`` autocasts the forward only);
* inference: ms/image at batch 1 and 32: flow forward + ``patch_nll`` of features already on the
  device, after a warm-up, timed between ``synchronize`` calls, in float32 and under autocast on
  ``--device`` (3200 images a timing), in float32 on the CPU (64 images);
* metrics: the demo category trained as ``mechanism demo`` trains it (12 epochs) in float32 with
  seeds 0 and 1 (their difference is the yardstick of seed noise) and under bfloat16 / float16
  autocast with seed 0, each evaluated in float32 (Image AUROC, Pixel AP); and the per-patch
  test NLL of the float32 model under autocast against float32 (nats per dimension).

A part that raises is reported as ``FAILED: ...`` and the others still run; the exit code is then
1. ``--quick`` shrinks every size (a smoke run on a CPU: its numbers mean nothing).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
import traceback
from pathlib import Path

import torch

AMP_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def precision(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` to ``dtype`` on ``device``; no autocast (float32) for None."""
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def epoch_seconds(features: torch.Tensor, device: torch.device, epochs: int,
                  dtype: torch.dtype | None = None):
    """Train the default flow on ``features (N, D, H, W)`` for ``epochs`` (≥ 2); returns the
    flow and ``(first epoch, median of the others)`` in seconds."""
    from mechanism.flow import FlowConfig
    from mechanism.train.config import TrainConfig
    from mechanism.train.fit import fit_flow
    from mechanism.train.loss import TailLossConfig

    with precision(device, dtype):
        flow, log = fit_flow(features, FlowConfig(), TailLossConfig(), TrainConfig(epochs=epochs, precision="fp32"),
                             device, progress=False)
    synchronize(device)
    return flow, (log[0].seconds, statistics.median(e.seconds for e in log[1:]))


@torch.inference_mode()
def inference_ms(flow, features: torch.Tensor, device: torch.device, batch: int, iters: int,
                 dtype: torch.dtype | None = None) -> float:
    """Milliseconds per image of flow forward + ``patch_nll`` on a batch of ``batch`` features
    held on ``device`` (no host transfer), mean over ``iters`` calls after ``iters // 4 + 2``
    warm-up calls."""
    from mechanism.flow import patch_nll

    if len(features) < batch:
        raise ValueError(f"batch {batch} needs at least {batch} feature maps, got {len(features)}")
    x = features[:batch].to(device)
    with precision(device, dtype):
        for _ in range(iters // 4 + 2):
            patch_nll(flow(x))
        synchronize(device)
        start = time.perf_counter()
        for _ in range(iters):
            patch_nll(flow(x))
        synchronize(device)
    return 1000 * (time.perf_counter() - start) / (iters * batch)


def demo_metrics(device: torch.device, quick: bool, work: Path) -> list[tuple[str, str]]:
    """Rows: Image AUROC / Pixel AP of the demo category trained in float32 (seeds 0, 1) and
    under autocast (seed 0), evaluated in float32; NLL of the float32 model under autocast."""
    from mechanism.backbone.features import cached_features
    from mechanism.backbone.model import BackboneConfig, load_backbone
    from mechanism.data.demo import generate_demo
    from mechanism.data.mvtec import read_split
    from mechanism.eval.detector import load_detector
    from mechanism.eval.evaluate import evaluate_detector
    from mechanism.train.config import TrainConfig
    from mechanism.train.fit import TrainingDiverged, train_detector

    category, data, cache = "grass", work / "demo", work / "cache"
    sizes = dict(n_train=16, n_test_good=4, n_test_defect=4, size=64) if quick else {}
    generate_demo(data, categories=(category,), **sizes)
    backbone = load_backbone(BackboneConfig(), device)
    for split in ("train", "test"):      # the backbone runs once, in float32, outside autocast
        cached_features(backbone, read_split(data, category, split), cache, device=device,
                        progress=False)
    rows, reference = [], {}
    for name, dtype, seed in (("float32", None, 0), ("float32", None, 1),
                              *((n, d, 0) for n, d in AMP_DTYPES.items())):
        label = f"demo {category}, trained {name}, seed {seed}"
        start = time.perf_counter()
        try:
            with precision(device, dtype):
                run = train_detector(data, category, work / f"{name}-{seed}.pt",
                                     train_cfg=TrainConfig(epochs=2 if quick else 12, seed=seed,
                                                           precision="fp32"),
                                     device=device, cache_dir=cache, progress=False)
        except TrainingDiverged as e:
            rows.append((label, f"diverged ({e})"))
            continue
        train_s = time.perf_counter() - start
        det = load_detector(run.checkpoint, device)
        m = evaluate_detector(det, data, category, cache_dir=cache, progress=False).metrics
        reference.setdefault(name, (det, m))
        base = reference["float32"][1]
        rows.append((label, f"Image AUROC {m.image_auroc:.4f} ({m.image_auroc - base.image_auroc:+.4f}), "
                            f"Pixel AP {m.pixel_ap:.4f} ({m.pixel_ap - base.pixel_ap:+.4f}) "
                            f"vs float32 seed 0; trained in {train_s:.1f} s"))
    det = reference["float32"][0]
    test = cached_features(det.backbone, read_split(data, category, "test"), cache, progress=False).features
    nll = det.patch_nll(test)
    for name, dtype in AMP_DTYPES.items():
        with precision(device, dtype):
            diff = (det.patch_nll(test).float() - nll).abs()
        rows.append((f"test patch NLL under {name} autocast vs float32",
                     f"mean |Δ| {diff.mean():.2e}, max |Δ| {diff.max():.2e} nats/dim "
                     f"(float32 NLL std {nll.std():.3f})"))
    return rows


def emit(line: str, out: Path | None) -> None:
    """Print ``line`` and append it to ``out`` (so a run cut short keeps what it measured)."""
    print(line, flush=True)
    if out is not None:
        with open(out, "a") as f:
            f.write(line + "\n")


def run_part(title: str, part, out: Path | None) -> bool:
    """Emit ``part()``'s rows under ``title``; False if it raised (its error becomes the row)."""
    emit(f"\n{title}", out)
    try:
        rows, ok = part(), True
    except Exception as e:  # a benchmark part that breaks must not hide the others' figures
        traceback.print_exc()
        rows, ok = [("FAILED", f"{type(e).__name__}: {e}")], False
    for name, value in rows:
        emit(f"  {name:<58}  {value}", out)
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run, numbers meaningless")
    ap.add_argument("--out", type=Path, default=None, help="also write the figures to this file, "
                    "line by line")
    args = ap.parse_args()

    from mechanism.device import resolve_device
    from mechanism.train.fit import TrainingDiverged

    device, cpu = resolve_device(args.device), torch.device("cpu")
    n, epochs = (32, 2) if args.quick else (200, 6)
    budget = {device: 8 if args.quick else 3200, cpu: 8 if args.quick else 64}  # images per timing
    features = torch.randn(n, 40, 28, 28, generator=torch.Generator().manual_seed(0))
    work = Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    if args.out is not None:
        args.out.write_text("")
    emit(f"bench/gpu.py  device={device} ({name})  torch {torch.__version__}  "
         f"CPU threads {torch.get_num_threads()} of {os.cpu_count()} cores  quick={args.quick}", args.out)
    emit(f"TF32: matmul {torch.backends.cuda.matmul.allow_tf32}, cudnn {torch.backends.cudnn.allow_tf32}; "
         f"load average {os.getloadavg()[0]:.2f}", args.out)
    precisions = (("float32", None), *AMP_DTYPES.items())
    runs = [(device, p) for p in precisions] + ([(cpu, precisions[0])] if device != cpu else [])
    trained = {}   # device → its float32 flow (for the inference timings)

    def training():
        rows = []
        for dev, (label, dtype) in runs:
            row = f"epoch, {n} images, {label} on {dev}"
            try:
                flow, (first, rest) = epoch_seconds(features, dev, epochs if dev == device else 2, dtype)
            except TrainingDiverged as e:
                rows.append((row, f"diverged ({e})"))
                continue
            if dtype is None:
                trained[dev] = flow
            rows.append((row, f"{rest:.3f} s (first epoch {first:.3f} s)"))
        return rows

    def inference():
        rows = []
        for dev, (label, dtype) in runs:
            for batch in (1, 32):
                ms = inference_ms(trained[dev], features, dev, batch, max(2, budget[dev] // batch), dtype)
                rows.append((f"inference, batch {batch}, {label} on {dev}", f"{ms:.3f} ms/image"))
        return rows

    ok = [run_part("training (FlowConfig(), batch 16, synthetic features)", training, args.out)]
    if trained:
        ok.append(run_part("inference (flow + patch_nll)", inference, args.out))
    ok.append(run_part("metrics (demo category, evaluated in float32)",
                       lambda: demo_metrics(device, args.quick, work), args.out))
    return 0 if all(ok) else 1


if __name__ == "__main__":
    raise SystemExit(main())
