"""Shared fixtures: a tiny demo data set and tiny trained checkpoints (64 px input, 4×4 grid).

They are session-scoped: built once, read-only for every test that uses them.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mechanism.backbone.model import BackboneConfig
from mechanism.data.demo import generate_demo
from mechanism.flow import FlowConfig
from mechanism.train.config import TrainConfig
from mechanism.train.fit import train_detector
from mechanism.train.loss import TailLossConfig

# Tests use tiny tensors: one thread avoids OpenMP busy-wait contention on a shared 2-core machine.
torch.set_num_threads(1)

TINY_BACKBONE = BackboneConfig(layers=(3,), local_avg=0, input_size=64)  # real Lite0 weights, 4×4 grid, D = 112
TINY_FLOW = FlowConfig(n_blocks=2, hidden=32, pos_channels=8, spatial_context=True)
TINY_TRAIN = TrainConfig(epochs=3, batch_size=4, seed=0)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` are skipped on a machine without CUDA."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU: torch.cuda.is_available() is False")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """Demo layout, categories brick and grass: 8 train, 4 good + 4 defective test images, 64 px."""
    root = tmp_path_factory.mktemp("tiny") / "demo"
    generate_demo(root, seed=0, categories=("brick", "grass"), n_train=8, n_test_good=4,
                  n_test_defect=4, size=64)
    return root


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("feature-cache")


def _train(tiny_data: Path, tiny_cache: Path, out: Path, tail_weight: float) -> Path:
    torch.manual_seed(0)
    return train_detector(tiny_data, "brick", out, TINY_BACKBONE, TINY_FLOW,
                          TailLossConfig(tail_weight, 0.1), TINY_TRAIN, "cpu", tiny_cache,
                          progress=False).checkpoint


@pytest.fixture(scope="session")
def tiny_ckpt(tiny_data, tiny_cache, tmp_path_factory) -> Path:
    """A tail-aware checkpoint (λ = 0.7, r = 0.1 → k = 2 of N = 16) on tiny brick."""
    return _train(tiny_data, tiny_cache, tmp_path_factory.mktemp("runs") / "tail.pt", 0.7)


@pytest.fixture(scope="session")
def tiny_baseline_ckpt(tiny_data, tiny_cache, tmp_path_factory) -> Path:
    """The λ = 0 baseline of ``tiny_ckpt`` (same data, seed and grid)."""
    return _train(tiny_data, tiny_cache, tmp_path_factory.mktemp("runs") / "base.pt", 0.0)
