"""Fit a patch flow to cached backbone features with the Tail-Aware Loss."""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from mechanism.backbone.features import cached_features
from mechanism.backbone.model import BackboneConfig, load_backbone
from mechanism.backbone.record import backbone_record
from mechanism.data.mvtec import fingerprint, read_split
from mechanism.device import CpuThreads, autocast_dtype, cpu_has_bf16_kernels
from mechanism.errors import MechanismError
from mechanism.flow import FlowConfig, PatchFlow
from mechanism.io.atomic import prepare_output, write_text
from mechanism.io.manifest import package_versions
from mechanism.io.transaction import commit_together, locked, recover_files
from mechanism.train.checkpoint import Checkpoint, DataRecord, save_checkpoint
from mechanism.train.config import TrainConfig
from mechanism.train.loss import TailLossConfig, loss_shares, tail_k
from mechanism.train.parallel import ParallelStep


class TrainingDiverged(MechanismError):
    """The loss or the weights became NaN or infinite; no checkpoint is written."""


@dataclass(frozen=True)
class EpochLog:
    """One epoch of training; NLLs in nats per dimension, averaged over the epoch's images."""
    epoch: int
    loss: float        # Tail-Aware Loss
    mean_nll: float    # mean over all patches
    tail_nll: float    # mean over each image's top-k patches (k from the loss's ratio)
    lr: float          # learning rate at the epoch's last step
    seconds: float     # wall time of the epoch
    threads: int       # CPU threads a step kept busy: ≤ one per micro-batch (1 on a GPU)

    def to_dict(self) -> dict:
        return asdict(self)


def fit_flow(features: torch.Tensor, flow_cfg: FlowConfig, loss_cfg: TailLossConfig,
             train_cfg: TrainConfig, device: torch.device | str = "cpu",
             progress: bool = True) -> tuple[PatchFlow, list[EpochLog]]:
    """Train a fresh flow on ``features: (N, D, H, W)`` and return it (eval mode) with its log.

    On the CPU each batch runs as micro-batches of whole images on a pool of threads
    (``mechanism.train.parallel``; as many threads as ``mechanism.device.CpuThreads`` says,
    which ``MECHANISM_THREADS=auto`` lets follow the idle cores, but at most one per
    micro-batch; the count a step kept busy is logged per epoch). The same
    ``train_cfg.seed`` gives the same weights on the same machine whatever the thread count.
    With ``train_cfg.precision == "bf16"`` the forward runs under bfloat16 autocast. The model
    after the last epoch is returned: no model selection.

    Raises:
        TrainingDiverged: at the first non-finite loss (naming the epoch and batch) or
            weights (checked after each epoch).
    """
    if features.ndim != 4 or features.shape[0] == 0:
        raise MechanismError(f"expected features (N, D, H, W) with N ≥ 1, got {tuple(features.shape)}")
    n, d, h, w = features.shape
    device = torch.device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(train_cfg.seed)
        flow = PatchFlow(d, h, w, flow_cfg).to(device)
    shuffle = torch.Generator().manual_seed(train_cfg.seed)
    tail_draws = torch.Generator().manual_seed(train_cfg.seed + 1)
    steps_per_epoch = math.ceil(n / train_cfg.batch_size)
    opt = torch.optim.AdamW(flow.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay,
                            fused=True)   # one kernel for all 8·8 parameter tensors, not ~600 small ops
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=train_cfg.epochs * steps_per_epoch)
    data = features.to(device)
    k = tail_k(h * w, loss_cfg.top_k_ratio)
    log: list[EpochLog] = []
    bar = tqdm(range(1, train_cfg.epochs + 1), desc="train", unit="epoch", disable=not progress)
    cpu = device.type == "cpu"
    threads = CpuThreads() if cpu else None
    bf16 = train_cfg.precision == "bf16"
    if bf16 and cpu and not cpu_has_bf16_kernels():
        warnings.warn("this CPU has no bfloat16 kernels (oneDNN needs AVX-512): bf16 training runs "
                      "on slow fallbacks here; --precision fp32 is likely faster", stacklevel=2)
    if torch.is_inference_mode_enabled():
        raise MechanismError("cannot train inside torch.inference_mode(): leave it first")
    # fp32 enters no autocast of its own: a caller's autocast stays in force (on every thread)
    autocast = torch.bfloat16 if bf16 else autocast_dtype(device.type)
    flow.train()
    with torch.enable_grad(), ParallelStep(flow, threads.limit if cpu else 1, autocast) as step:
        for epoch in bar:
            if cpu:
                step.threads = threads.update()
            start = time.perf_counter()
            sums = torch.zeros(3, dtype=torch.float64)
            order = torch.randperm(n, generator=shuffle)
            for i in range(steps_per_epoch):
                idx = order[i * train_cfg.batch_size:(i + 1) * train_cfg.batch_size]
                shares = loss_shares(loss_cfg, len(idx), h * w, tail_draws)
                loss, nll = step(data[idx.to(device)], shares)
                if not torch.isfinite(loss):
                    raise TrainingDiverged(f"training diverged: non-finite loss at epoch {epoch}, "
                                           f"batch {i + 1}/{steps_per_epoch}; no checkpoint written")
                opt.step()
                sched.step()
                with torch.no_grad():
                    flat = nll.flatten(1)
                    sums += torch.tensor([loss.item() * len(idx), flat.mean(1).sum().item(),
                                          flat.topk(k, dim=1).values.mean(1).sum().item()],
                                         dtype=torch.float64)
            if not all(bool(torch.isfinite(p).all()) for p in flow.parameters()):
                raise TrainingDiverged(f"training diverged: non-finite weights after epoch {epoch}; "
                                       "no checkpoint written")
            loss_mean, mean_nll, tail_nll = (sums / n).tolist()
            log.append(EpochLog(epoch, loss_mean, mean_nll, tail_nll, opt.param_groups[0]["lr"],
                                time.perf_counter() - start, step.busy_threads(train_cfg.batch_size)))
            bar.set_postfix(loss=f"{loss_mean:.4f}", tail=f"{tail_nll:.3f}")
    return flow.eval(), log


@dataclass(frozen=True)
class TrainRun:
    """What ``train_detector`` wrote and measured."""
    checkpoint: Path             # the .pt file
    log_csv: Path                # per-epoch log next to it
    log: list[EpochLog]
    feature_seconds: float       # backbone time (≈ 0 on a feature-cache hit)
    train_seconds: float         # flow training time
    features_from_cache: bool


def _write_log_csv(log: list[EpochLog], path: Path) -> None:
    import csv
    import io
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(EpochLog.__dataclass_fields__))
    writer.writeheader()
    for row in log:
        writer.writerow(row.to_dict())
    write_text(path, buf.getvalue())


def train_detector(data_root: str | Path, category: str | None, out: str | Path,
                   backbone_cfg: BackboneConfig = BackboneConfig(),
                   flow_cfg: FlowConfig = FlowConfig(), loss_cfg: TailLossConfig = TailLossConfig(),
                   train_cfg: TrainConfig = TrainConfig(), device: torch.device | str = "cpu",
                   cache_dir: Path | None = None, progress: bool = True) -> TrainRun:
    """Train a detector on ``<data_root>/<category>/train/good`` and write its checkpoint.

    Writes ``out`` (checkpoint) and ``out`` with suffix ``.log.csv`` (per-epoch log) together
    (``io.transaction.commit_together``), and only after training finished with finite losses. ``cache_dir``: the
    feature cache folder; ``None``: no cache (the backbone always runs).
    """
    out = prepare_output(out)
    with locked(out):    # one training per output, from the first check to the commit
        recover_files(out)
        device = torch.device(device)
        samples = read_split(data_root, category, "train")
        backbone = load_backbone(backbone_cfg, device)
        start = time.perf_counter()
        feats = cached_features(backbone, samples, cache_dir, device=device, progress=progress)
        feature_seconds = time.perf_counter() - start
        start = time.perf_counter()
        flow, log = fit_flow(feats.features, flow_cfg, loss_cfg, train_cfg, device, progress)
        train_seconds = time.perf_counter() - start
        h, w = backbone.grid()
        ckpt = Checkpoint(
            backbone=backbone_record(backbone), grid=(h, w, backbone.out_channels), flow=flow_cfg,
            loss=loss_cfg, train=train_cfg,
            data=DataRecord(str(Path(data_root).resolve()), samples[0].category, fingerprint(samples),
                            len(samples)),
            flow_state=flow.state_dict(), versions=package_versions(),
            summary={"final_loss": log[-1].loss, "final_mean_nll": log[-1].mean_nll,
                     "final_tail_nll": log[-1].tail_nll, "train_seconds": train_seconds})
        log_csv = out.with_suffix(".log.csv")
        with commit_together(out, log_csv, lock="held") as (staged_ckpt, staged_log):
            save_checkpoint(ckpt, staged_ckpt)
            _write_log_csv(log, staged_log)
        return TrainRun(out, log_csv, log, feature_seconds, train_seconds, feats.from_cache)
