"""Benchmark: training recipes × scoring choices on small defects (and on the demo's large ones).

    python bench/small_defects.py --data ../shared/data/bsdata --categories ball_screw
                                  [--seeds 0,1,2] [--epochs 10] [--input-size 224x544]
                                  [--recipe local_avg=0 ...] [--sigmas 0,2,4] [--image-scores max,top_area_mean]
                                  [--threads 2]

Each recipe (the defaults, plus every ``--recipe KEY=VALUE[,KEY=VALUE]`` over fields of
``BackboneConfig``, ``FlowConfig`` or ``TrainConfig``; a tuple value is written with ``+``, e.g.
``layers=2+3``; ``input_size`` takes ``224`` or ``224x544``) is trained on every category and
seed with ``train_detector`` (features cached once per backbone; ``--input-size`` is every
recipe's input unless the recipe sets its own). Each trained detector scores the test images once
(the per-patch latent energy, evaluate's default map score); the maps are then made with every
blur σ of ``--sigmas`` and every image score of ``--image-scores``, and compared with the
masks at the input size (nearest-neighbour resize, as ``mechanism evaluate`` does). Pixel metrics
do not depend on the image score, so they are computed once per σ.

Prints, per category, recipe, σ and image score: Image AUROC, Pixel AUROC, Pixel AP and
AUPRO@0.3 as mean ± sd over seeds, the training s/epoch (cached features) and the inference
ms/image (decoded image → map and score, batch 16) per recipe, the data facts (how many masks the
input size empties), the load average and the run's peak RSS. Quote ratios from one run.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path

import click
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EVAL_BATCH = 16


def parse_recipe(text: str, configs: tuple) -> tuple:
    """``"local_avg=0,hidden=64"`` → ``configs`` (dataclass instances) with those fields replaced;
    each key names a field of exactly one of them; types follow the current values."""
    from cli.options import InputSize
    from mechanism.errors import MechanismError
    changes: list[dict] = [{} for _ in configs]
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        owners = [i for i, c in enumerate(configs) if key in {f.name for f in fields(c)}]
        if len(owners) != 1:
            raise SystemExit(f"error: {key!r} is not a field of exactly one of "
                             f"{', '.join(type(c).__name__ for c in configs)}")
        current = getattr(configs[owners[0]], key)
        if key == "input_size":
            try:
                parsed = InputSize().convert(value, None, None)
            except click.BadParameter as e:
                raise SystemExit(f"error: input_size: {e.message}") from None
        elif isinstance(current, tuple):
            parsed = tuple(type(current[0])(v) for v in value.split("+"))
        elif isinstance(current, bool):
            parsed = value.lower() in ("1", "true", "yes")
        else:
            parsed = type(current)(value)
        changes[owners[0]][key] = parsed
    try:
        return tuple(replace(c, **ch) for c, ch in zip(configs, changes))
    except MechanismError as e:
        raise SystemExit(f"error: {text}: {e}") from None


def test_data(data: Path, category: str, size: tuple[int, int]):
    """Test samples, masks ``(N, S_h, S_w)`` at the input size, labels and decoded images."""
    from mechanism.data.images import load_image, load_mask
    from mechanism.data.mvtec import read_split
    samples = read_split(data, category, "test")
    masks = np.stack([load_mask(s.mask_path, size, s.path) for s in samples])
    labels = np.array([s.label for s in samples], dtype=np.int64)
    images = torch.from_numpy(np.stack([load_image(s.path, size) for s in samples[:EVAL_BATCH * 2]]))
    return samples, masks, labels, images


def inference_ms(detector, images: torch.Tensor) -> float:
    """ms per image: decoded images (the first 32 test images) → latent-energy map (σ 4) and
    top-area score, batch 16."""
    from mechanism.eval.scoring import anomaly_maps, image_scores
    start = time.perf_counter()
    with torch.no_grad():
        for batch in images.split(EVAL_BATCH):
            per_patch = detector.patch_scores(detector.backbone(batch), ("latent",))["latent"]
            image_scores(per_patch, anomaly_maps(per_patch, detector.backbone.cfg.input_shape, 4.0),
                         "top_area_mean")
    return 1000 * (time.perf_counter() - start) / len(images)


def score_variants(detector, samples, masks, labels, sigmas, methods, cache: Path) -> dict:
    """``{(σ, method): {metric: value}}`` of one trained detector."""
    from mechanism.eval.metrics import detection_metrics
    from mechanism.eval.metrics.detection import image_auroc
    from mechanism.eval.scoring import anomaly_maps, image_scores
    per_patch = detector.patch_scores(detector.features(samples, cache, progress=False),
                                      ("latent",))["latent"].numpy()
    out = {}
    for sigma in sigmas:
        maps = anomaly_maps(per_patch, detector.backbone.cfg.input_shape, sigma)
        pixel = detection_metrics(image_scores(per_patch, maps, methods[0]), labels, maps, masks).to_dict()
        for method in methods:
            out[sigma, method] = {**{k: pixel[k] for k in ("pixel_auroc", "pixel_ap", "aupro")},
                                  "image_auroc": image_auroc(image_scores(per_patch, maps, method), labels)}
    return out


METRICS = (("image_auroc", "Image AUROC"), ("pixel_auroc", "Pixel AUROC"), ("pixel_ap", "Pixel AP"),
           ("aupro", "AUPRO@0.3"))


def mean_sd(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}" if len(values) > 1 \
        else f"{values[0]:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--categories", required=True)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--input-size", default="224")
    ap.add_argument("--recipe", action="append", default=[], help="KEY=VALUE,... (repeatable)")
    ap.add_argument("--no-default", action="store_true", help="skip the default recipe")
    ap.add_argument("--sigmas", default="0,2,4")
    ap.add_argument("--image-scores", default="top_area_mean,max")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", type=Path, default=None, help="folder for checkpoints and the "
                    "feature cache [default: a temporary folder]")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from mechanism.backbone.model import BackboneConfig, load_backbone
    from mechanism.data.facts import data_facts
    from mechanism.errors import MechanismError
    from mechanism.eval.detector import load_detector
    from mechanism.flow import FlowConfig
    from mechanism.train.config import TrainConfig
    from mechanism.train.fit import train_detector

    base = parse_recipe(f"input_size={args.input_size}", (BackboneConfig(), FlowConfig(), TrainConfig()))
    recipes = {} if args.no_default else {"default": base}
    recipes.update({text: parse_recipe(text, base) for text in args.recipe})
    for text, (backbone_cfg, _, _) in recipes.items():
        try:
            load_backbone(backbone_cfg)      # stages and input size fit the network, before any work
        except MechanismError as e:
            raise SystemExit(f"error: {text}: {e}") from None
    sigmas = [float(s) for s in args.sigmas.split(",")]
    methods = args.image_scores.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-small-defects-"))
    try:
        load = [os.getloadavg()[0]]
        rows, facts = [], []
        for category in args.categories.split(","):
            for number, (name, (backbone_cfg, flow_cfg, train_cfg)) in enumerate(recipes.items()):
                size = backbone_cfg.input_shape
                samples, masks, labels, images = test_data(args.data, category, size)
                fact = data_facts(args.data, category, size, (1, 1))
                facts.append(f"{category} at {size[0]}×{size[1]} (h×w): {fact.n_test_defective} defective "
                             f"test images, {fact.masks_emptied} masks emptied by the resize, defective "
                             f"pixels {fact.defect_pixel_share:.3%} of all test pixels")
                results, epoch_s, infer = [], [], []
                for seed in seeds:
                    run = train_detector(args.data, category, work / f"{category}-recipe{number}-seed{seed}.pt",
                                         backbone_cfg=backbone_cfg, flow_cfg=flow_cfg,
                                         train_cfg=replace(train_cfg, epochs=args.epochs, seed=seed),
                                         cache_dir=work / "cache", progress=False)
                    detector = load_detector(run.checkpoint)
                    epoch_s.append(statistics.mean(r.seconds for r in run.log))
                    infer.append(inference_ms(detector, images))
                    results.append(score_variants(detector, samples, masks, labels, sigmas, methods,
                                                  work / "cache"))
                    print(f"[{time.strftime('%H:%M:%S')}] {category} {name} seed {seed} done",
                          file=sys.stderr, flush=True)
                for key in results[0]:
                    rows.append([category, name, f"{key[0]:g}", key[1],
                                 *(mean_sd([r[key][m] for r in results]) for m, _ in METRICS),
                                 f"{statistics.mean(epoch_s):.2f}", f"{statistics.mean(infer):.1f}"])
    finally:
        if args.work is None:          # features and checkpoints: gigabytes on BSData
            shutil.rmtree(work, ignore_errors=True)
    load.append(os.getloadavg()[0])
    print(f"bench/small_defects.py  data={args.data} epochs={args.epochs} seeds={args.seeds} "
          f"threads={args.threads}; mean ± sd over seeds")
    print(f"load average (1 min) before / after: {load[0]:.2f} / {load[1]:.2f} on {os.cpu_count()} "
          f"cores; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    for line in facts:
        print(line)
    header = ["category", "recipe", "σ px", "image score", *(t for _, t in METRICS),
              "train s/epoch", "infer ms/img"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
