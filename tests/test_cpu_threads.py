"""The CPU thread policy: a fixed count by default; in auto mode the cores other processes leave
idle, from /proc/stat."""
import os
import threading

import pytest
import torch

from mechanism import device
from mechanism.device import CpuThreads, busy_core_seconds, threads_for_idle_cores
from mechanism.flow import FlowConfig
from mechanism.train.config import TrainConfig
from mechanism.train.fit import fit_flow
from mechanism.train.loss import TailLossConfig


@pytest.mark.parametrize("limit,others,expected", [
    (2, 0.0, 2), (2, 0.4, 2), (2, 0.5, 1), (2, 0.6, 1), (2, 1.0, 1), (2, 7.0, 1), (1, 0.0, 1),
    (2, -0.3, 2)])
def test_threads_are_the_idle_cores_within_the_limit(limit, others, expected):
    assert threads_for_idle_cores(limit, 2, others) == expected


def test_half_cores_round_up_alike():
    """No banker's rounding: 0.5 and 1.5 busy cores both count as the next core up."""
    assert threads_for_idle_cores(4, 4, 0.5) == 3 and threads_for_idle_cores(4, 4, 2.5) == 1


def test_busy_core_seconds_counts_everything_but_idle_and_iowait(tmp_path):
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
    stat.write_text("cpu  100 5 50 1000 20 3 2 7 40 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"
                    "cpu1 10 0 0 50 0 0 0 0 0 0\nintr 5 6\n")
    tick = os.sysconf("SC_CLK_TCK")
    assert busy_core_seconds(stat=str(stat)) == pytest.approx(167 / tick)
    assert busy_core_seconds([0], str(stat)) == pytest.approx(27 / tick)     # 1+2+3+6+7+8
    assert busy_core_seconds([0, 1], str(stat)) == pytest.approx(37 / tick)
    assert busy_core_seconds([5], str(stat)) is None                        # no such CPU line
    assert busy_core_seconds(stat=str(tmp_path / "missing")) is None


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


def _fake(monkeypatch, machine: _Machine, choice: str = "auto"):
    monkeypatch.setattr(device, "time", machine)
    monkeypatch.setattr(device, "busy_core_seconds", lambda cpus: machine.busy())
    monkeypatch.setattr(device, "usable_cpus", lambda: [0, 1])
    monkeypatch.setenv(device.THREADS_ENV, choice)


def test_update_drops_to_one_thread_beside_a_busy_core_and_comes_back(monkeypatch):
    torch.set_num_threads(2)
    try:
        machine = _Machine(others=1.0, own=2.0)    # our own CPU time is not counted as busy
        _fake(monkeypatch, machine)
        threads = CpuThreads()
        machine.advance(3.0)
        assert threads.update() == 1
        machine.others = 0.0
        machine.advance(3.0)
        assert threads.update() == 2
        machine.advance(0.01)                       # a window too short is first lengthened
        assert threads.update() == 2 and machine.t == pytest.approx(6.1)
    finally:
        torch.set_num_threads(1)


@pytest.mark.parametrize("choice", ["2", ""])
def test_without_auto_the_count_stays_whatever_the_load(monkeypatch, choice):
    """A number sets that count (also through the Python API); unset keeps the count in force."""
    torch.set_num_threads(1 if choice else 2)
    try:
        machine = _Machine(others=1.0, own=0.0)
        _fake(monkeypatch, machine, choice)
        threads = CpuThreads()
        machine.advance(3.0)
        assert threads.update() == 2 and threads.update() == 2
        assert torch.get_num_threads() == (1 if choice else 2)      # decided, not applied
    finally:
        torch.set_num_threads(1)


def test_training_restores_the_thread_count(monkeypatch):
    """Beside a busy core training drops to 1 thread (its micro-batches on the caller's
    thread); afterwards torch's count in force before it is back (also after an error)."""
    machine = _Machine(others=1.0, own=1.0)
    _fake(monkeypatch, machine)
    names = set()
    hook = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda mod, inp: names.add(threading.current_thread().name))
    torch.set_num_threads(2)
    try:
        feats = torch.randn(32, 4, 3, 3)
        _, log = fit_flow(feats, FlowConfig(n_blocks=1, hidden=8, pos_channels=4), TailLossConfig(),
                          TrainConfig(epochs=2, batch_size=16), progress=False)
        assert names == {threading.current_thread().name} and torch.get_num_threads() == 2
        assert [e.threads for e in log] == [1, 1]
        with pytest.raises(Exception):
            fit_flow(feats * float("nan"), FlowConfig(n_blocks=1, hidden=8, pos_channels=4),
                     TailLossConfig(), TrainConfig(epochs=1, batch_size=2), progress=False)
        assert torch.get_num_threads() == 2
    finally:
        hook.remove()
        torch.set_num_threads(1)


def test_epoch_log_records_threads_and_precision_changes_the_arithmetic():
    """bf16 and fp32 training of the same seed agree closely but not bitwise; each epoch logs
    its thread count."""
    torch.set_num_threads(1)
    feats = torch.randn(4, 4, 3, 3, generator=torch.Generator().manual_seed(0))
    cfg = FlowConfig(n_blocks=2, hidden=8, pos_channels=4)
    logs = {p: fit_flow(feats, cfg, TailLossConfig(), TrainConfig(epochs=2, batch_size=2, precision=p),
                        progress=False)[1] for p in ("bf16", "fp32")}
    assert [e.threads for e in logs["bf16"]] == [1, 1]
    assert logs["bf16"][-1].loss != logs["fp32"][-1].loss
    assert logs["bf16"][-1].loss == pytest.approx(logs["fp32"][-1].loss, rel=1e-2)


@pytest.mark.parametrize("value", ["0", "two", "²", "-1"])
def test_a_bad_environment_value_is_an_error_in_the_api_too(monkeypatch, value):
    from mechanism.errors import MechanismError
    monkeypatch.setenv(device.THREADS_ENV, value)
    with pytest.raises(MechanismError, match="neither auto nor a thread count"):
        CpuThreads()


def test_fp32_training_keeps_a_caller_s_autocast(monkeypatch):
    """``precision="fp32"`` enters no autocast of its own, so an outer autocast (as in
    ``bench/gpu.py``) still reaches the flow, also on the pool's threads (autocast is per
    thread): two micro-batches of 8, at 2 threads."""
    monkeypatch.setenv(device.THREADS_ENV, "2")
    flow_states = []
    hook = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda mod, inp: flow_states.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        if type(mod).__name__ == "PatchFlow" else None)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            _, log = fit_flow(torch.randn(16, 4, 3, 3), FlowConfig(n_blocks=1, hidden=8, pos_channels=4),
                              TailLossConfig(), TrainConfig(epochs=1, batch_size=16, precision="fp32"),
                              progress=False)
    finally:
        hook.remove()
    assert log[0].threads == 2 and len(flow_states) == 2
    assert set(flow_states) == {(True, torch.bfloat16)}
