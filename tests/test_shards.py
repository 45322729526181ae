"""Data-parallel training steps: shards of images on threads give the unsharded step's NLL and
gradients, deterministically, with the intra-op threads each shard is owed."""
import threading

import pytest
import torch

from mechanism.flow import FlowConfig, PatchFlow, patch_nll
from mechanism.train.config import TrainConfig
from mechanism.train.fit import fit_flow
from mechanism.train.loss import TailLossConfig, tail_aware_loss
from mechanism.train.shards import ShardedStep, shard_sizes


@pytest.mark.parametrize("images,threads,sizes", [
    (16, 2, [8, 8]), (10, 4, [3, 3, 2, 2]), (1, 2, [1]), (3, 1, [3]), (5, 8, [1, 1, 1, 1, 1])])
def test_shard_sizes(images, threads, sizes):
    assert shard_sizes(images, threads) == sizes and sum(sizes) == images


def _flow(seed=0):
    torch.manual_seed(seed)
    flow = PatchFlow(6, 3, 4, FlowConfig(n_blocks=2, hidden=8, pos_channels=4)).double()
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return flow


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_sharded_step_gives_the_unsharded_nll_and_gradients(threads):
    flow = _flow()
    x = torch.randn(5, 6, 3, 4, dtype=torch.float64)
    cfg = TailLossConfig(tail_weight=0.7, top_k_ratio=0.25)
    whole = patch_nll(flow(x))
    tail_aware_loss(whole, cfg).backward()
    expected = [p.grad.clone() for p in flow.parameters()]
    for p in flow.parameters():
        p.grad = None
    with ShardedStep(flow, threads) as step:
        nll = step.forward(x)
        tail_aware_loss(nll, cfg).backward()
        step.backward(nll)
    torch.testing.assert_close(nll, whole.detach(), rtol=0, atol=1e-12)
    for p, g in zip(flow.parameters(), expected):
        torch.testing.assert_close(p.grad, g, rtol=0, atol=1e-12)


def test_backward_before_the_loss_is_refused():
    with ShardedStep(_flow(), 2) as step:
        nll = step.forward(torch.randn(2, 6, 3, 4, dtype=torch.float64))
        with pytest.raises(RuntimeError, match="loss.backward"):
            step.backward(nll)


@pytest.mark.parametrize("batch,seen", [(4, {1}), (1, {2})])
def test_each_shard_runs_with_its_share_of_the_threads(batch, seen):
    """At 2 threads a batch of 4 runs as two shards of one intra-op thread each, on the pool's
    threads; a single image runs on the caller's thread with both."""
    flow = _flow()
    counts, names = set(), set()

    def record(*_):
        counts.add(torch.get_num_threads())
        names.add(threading.current_thread().name)

    flow.blocks[0].register_forward_hook(record)
    before = torch.get_num_threads()
    with ShardedStep(flow, 2) as step:
        step.forward(torch.randn(batch, 6, 3, 4, dtype=torch.float64))
    assert counts == seen and torch.get_num_threads() == before
    assert (threading.current_thread().name in names) == (batch == 1)


def test_threads_must_lie_within_the_pool():
    with ShardedStep(_flow(), 2) as step:
        step.threads = 1
        with pytest.raises(ValueError, match=r"\[1, 2\]"):
            step.threads = 3
    with pytest.raises(ValueError, match="at least one thread"):
        ShardedStep(_flow(), 0)


def test_an_error_in_a_shard_reaches_the_caller():
    flow = _flow()
    flow.blocks[1].register_forward_hook(lambda *_: (_ for _ in ()).throw(ArithmeticError("boom")))
    with ShardedStep(flow, 2) as step, pytest.raises(ArithmeticError, match="boom"):
        step.forward(torch.randn(4, 6, 3, 4, dtype=torch.float64))


def test_two_thread_training_is_bit_identical_on_rerun(monkeypatch):
    monkeypatch.setenv("MECHANISM_THREADS", "2")
    feats = torch.randn(12, 6, 3, 4, generator=torch.Generator().manual_seed(1))
    runs = [fit_flow(feats, FlowConfig(n_blocks=2, hidden=8, pos_channels=4), TailLossConfig(),
                     TrainConfig(epochs=2, batch_size=5), progress=False) for _ in range(2)]
    assert [e.threads for e in runs[0][1]] == [2, 2]
    for a, b in zip(runs[0][0].state_dict().values(), runs[1][0].state_dict().values()):
        assert torch.equal(a, b)
