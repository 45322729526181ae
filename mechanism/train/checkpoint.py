"""One-file checkpoints: flow weights plus the complete configuration, as plain data.

A checkpoint is a dict of plain Python types and tensors, saved with ``torch.save`` and read
with ``torch.load(weights_only=True)``, so loading never runs code from the file and a CUDA
checkpoint loads on a CPU-only machine (``map_location``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from mechanism.backbone.model import BackboneConfig
from mechanism.errors import MechanismError
from mechanism.flow import FlowConfig, PatchFlow
from mechanism.io.atomic import atomic_path
from mechanism.io.serialize import from_plain
from mechanism.io.transaction import recover_files
from mechanism.train.config import TrainConfig
from mechanism.train.loss import TailLossConfig

FORMAT = "tailflow-mechanism/checkpoint"
SCHEMA_VERSION = 1
SECTIONS = ("format", "schema_version", "backbone", "grid", "flow", "loss", "train", "data",
            "versions", "summary", "flow_state")   # the keys of ``Checkpoint.to_payload``


@dataclass(frozen=True)
class DataRecord:
    """Which training data a checkpoint saw."""
    root: str            # data root as given (absolute)
    category: str        # category trained on
    fingerprint: str     # SHA-256 of the training files (names and bytes)
    n_train: int         # number of training images

    def __post_init__(self):
        if self.n_train < 1:
            raise ValueError(f"n_train: expected ≥ 1 training images, got {self.n_train}")


@dataclass(frozen=True)
class Checkpoint:
    """A trained detector, as loaded from disk.

    ``backbone`` is the backbone's plain-typed record (``mechanism.backbone.record``: its config
    and the SHA-256 of its weights); ``grid`` is ``(H, W, D)`` of the flow's input; ``versions``
    are ``mechanism.io.manifest.package_versions()`` at training time.
    """
    backbone: dict[str, Any]
    grid: tuple[int, int, int]
    flow: FlowConfig
    loss: TailLossConfig
    train: TrainConfig
    data: DataRecord
    flow_state: dict[str, torch.Tensor]
    versions: dict[str, str]
    summary: dict[str, float]

    @property
    def n_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    def build_flow(self, device: torch.device | str = "cpu") -> PatchFlow:
        """The trained flow in eval mode on ``device``."""
        h, w, d = self.grid
        flow = PatchFlow(d, h, w, self.flow)
        expected = flow.state_dict()
        missing = sorted(set(expected) - set(self.flow_state))
        unexpected = sorted(set(self.flow_state) - set(expected))
        wrong = [k for k in expected if k in self.flow_state
                 and self.flow_state[k].shape != expected[k].shape]
        if missing or unexpected or wrong:
            what = (f"missing weight {missing[0]!r}" if missing else
                    f"unknown weight {unexpected[0]!r}" if unexpected else
                    f"weight {wrong[0]!r} has shape {tuple(self.flow_state[wrong[0]].shape)}, "
                    f"its config needs {tuple(expected[wrong[0]].shape)}")
            others = len(missing) + len(unexpected) + len(wrong) - 1
            raise MechanismError(f"checkpoint flow weights do not fit its own config: {what}"
                                 + (f" (and {others} more)" if others else ""))
        flow.load_state_dict(self.flow_state, strict=True)
        return flow.to(device).eval()

    def to_payload(self) -> dict[str, Any]:
        h, w, d = self.grid
        return {
            "format": FORMAT, "schema_version": SCHEMA_VERSION,
            "backbone": dict(self.backbone), "grid": {"height": h, "width": w, "dim": d},
            "flow": self.flow.to_dict(), "loss": self.loss.to_dict(), "train": self.train.to_dict(),
            "data": dict(vars(self.data)), "versions": dict(self.versions),
            "summary": dict(self.summary),
            "flow_state": {k: v.detach().cpu() for k, v in self.flow_state.items()},
        }


def save_checkpoint(ckpt: Checkpoint, path: str | Path) -> Path:
    """Write ``ckpt`` atomically to ``path`` (a ``.pt`` file)."""
    with atomic_path(path) as tmp:
        torch.save(ckpt.to_payload(), tmp)
    return Path(path)


@dataclass(frozen=True)
class _Grid:
    height: int
    width: int
    dim: int


@dataclass(frozen=True)
class _Summary:   # train_detector's summary
    final_loss: float
    final_mean_nll: float
    final_tail_nll: float
    train_seconds: float


@dataclass(frozen=True)
class _BackboneRecord:   # mechanism.backbone.record.backbone_record's shape
    config: BackboneConfig
    weights_sha256: str


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read and validate a checkpoint without executing anything stored in it.

    Every section is read strictly (``from_plain``): a missing section or field, an unknown
    field, a value of the wrong type or out of its config's range is one error naming the file
    and the field.

    Raises:
        MechanismError: missing file, not a torch file, a pickle with code in it, a file from
            another program, an unsupported schema, or a malformed section.
    """
    path = Path(path)
    try:
        recover_files(path)   # a training killed while committing model + log finishes first
    except OSError as e:
        raise MechanismError(f"an interrupted write of {path} is pending and cannot be finished "
                             f"here ({e.strerror}): rerun the training that wrote it") from None
    if not path.is_file():
        raise MechanismError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types for corrupt or unsafe files
        reason = "it holds objects other than plain data (refused unopened)" \
            if "Weights only load failed" in str(e) else "it is corrupt or not a torch file"
        raise MechanismError(f"cannot load checkpoint {path}: {reason}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise MechanismError(f"{path} is not a tailflow-mechanism checkpoint")
    version = payload.get("schema_version")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise MechanismError(f"{path} has checkpoint schema {version!r}; this version reads "
                             f"{SCHEMA_VERSION}")

    unknown = sorted(set(payload) - set(SECTIONS))
    if unknown:
        raise MechanismError(f"checkpoint {path} has an unknown section {unknown[0]!r}")

    def section(key: str, read: Callable[[Any, str], Any]) -> Any:
        if key not in payload:
            raise MechanismError(f"checkpoint {path} has no {key!r} section")
        try:
            return read(payload[key], key)
        except (TypeError, ValueError) as e:
            raise MechanismError(f"checkpoint {path}: {e}") from None
        except MechanismError as e:   # a config's range check
            raise MechanismError(f"checkpoint {path}: {key}: {e}") from None

    grid = section("grid", lambda v, k: from_plain(_Grid, v, k))
    if min(grid.height, grid.width, grid.dim) < 1:
        raise MechanismError(f"checkpoint {path}: grid {grid} must be positive")
    state = section("flow_state", _weights)
    section("backbone", lambda v, k: from_plain(_BackboneRecord, v, k))
    section("summary", lambda v, k: from_plain(_Summary, v, k))
    return Checkpoint(
        backbone=payload["backbone"],
        grid=(grid.height, grid.width, grid.dim),
        flow=section("flow", FlowConfig.from_dict),
        loss=section("loss", TailLossConfig.from_dict),
        train=section("train", TrainConfig.from_dict),
        data=section("data", lambda v, k: from_plain(DataRecord, v, k)),
        flow_state=state,
        versions=section("versions", lambda v, k: from_plain(dict[str, str], v, k)),
        summary=section("summary", lambda v, k: from_plain(dict[str, float], v, k)),
    )


def _weights(value: Any, where: str) -> dict[str, torch.Tensor]:
    if isinstance(value, dict) and all(isinstance(name, str) and isinstance(t, torch.Tensor)
                                       for name, t in value.items()):
        return value
    raise ValueError(f"{where}: expected a map of weight names to tensors")
