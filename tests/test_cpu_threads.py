"""The CPU thread policy: threads follow the cores other processes leave idle, from /proc/stat."""
import os

import pytest
import torch

from mechanism import device
from mechanism.device import CpuThreads, busy_core_seconds, threads_for_idle_cores
from mechanism.flow import FlowConfig
from mechanism.train.config import TrainConfig
from mechanism.train.fit import fit_flow
from mechanism.train.loss import TailLossConfig


@pytest.mark.parametrize("limit,others,expected", [
    (2, 0.0, 2), (2, 0.4, 2), (2, 0.6, 1), (2, 1.0, 1), (2, 7.0, 1), (1, 0.0, 1), (2, -0.3, 2)])
def test_threads_are_the_idle_cores_within_the_limit(monkeypatch, limit, others, expected):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert threads_for_idle_cores(limit, others) == expected


def test_busy_core_seconds_counts_everything_but_idle_and_iowait(tmp_path):
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
    stat.write_text("cpu  100 5 50 1000 20 3 2 7 40 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n")
    assert busy_core_seconds(str(stat)) == pytest.approx(167 / os.sysconf("SC_CLK_TCK"))
    assert busy_core_seconds(str(tmp_path / "missing")) is None


class _Machine:
    """Fake clocks: ``others`` cores busy with other processes, ``own`` cores used by us."""

    def __init__(self, others: float, own: float):
        self.t, self.others, self.own = 0.0, others, own

    def advance(self, seconds: float):
        self.t += seconds

    def monotonic(self):
        return self.t

    def process_time(self):
        return self.own * self.t

    def sleep(self, seconds):
        self.advance(seconds)

    def busy(self):
        return (self.others + self.own) * self.t


def _fake(monkeypatch, machine: _Machine):
    monkeypatch.setattr(device, "time", machine)
    monkeypatch.setattr(device, "busy_core_seconds", machine.busy)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.delenv(device.THREADS_ENV, raising=False)


def test_update_drops_to_one_thread_beside_a_busy_core_and_comes_back(monkeypatch):
    torch.set_num_threads(2)
    try:
        machine = _Machine(others=1.0, own=2.0)    # our own CPU time is not counted as busy
        _fake(monkeypatch, machine)
        threads = CpuThreads()
        machine.advance(3.0)
        assert threads.update() == 1 and torch.get_num_threads() == 1
        machine.others = 0.0
        machine.advance(3.0)
        assert threads.update() == 2
        machine.advance(0.01)                       # a window too short is first lengthened
        assert threads.update() == 2 and machine.t == pytest.approx(6.1)
    finally:
        torch.set_num_threads(1)


def test_a_number_in_the_environment_fixes_the_count(monkeypatch):
    torch.set_num_threads(2)
    try:
        machine = _Machine(others=1.0, own=0.0)
        _fake(monkeypatch, machine)
        monkeypatch.setenv(device.THREADS_ENV, "2")
        threads = CpuThreads()
        machine.advance(3.0)
        assert threads.update() == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)


def test_training_restores_the_thread_count(monkeypatch):
    """Beside a busy core training drops to 1 thread; afterwards the count in force before it
    is back (also when training stops with an error)."""
    machine = _Machine(others=1.0, own=1.0)
    _fake(monkeypatch, machine)
    seen = []
    monkeypatch.setattr(torch.optim.AdamW, "step", lambda self, *a, **k: seen.append(torch.get_num_threads()))
    torch.set_num_threads(2)
    try:
        feats = torch.randn(4, 4, 3, 3)
        fit_flow(feats, FlowConfig(n_blocks=1, hidden=8, pos_channels=4), TailLossConfig(),
                 TrainConfig(epochs=2, batch_size=2), progress=False)
        assert seen and set(seen) == {1} and torch.get_num_threads() == 2
        with pytest.raises(Exception):
            fit_flow(feats * float("nan"), FlowConfig(n_blocks=1, hidden=8, pos_channels=4),
                     TailLossConfig(), TrainConfig(epochs=1, batch_size=2), progress=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
