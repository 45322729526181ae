"""Data-parallel training steps: micro-batches on a pool of threads give the unsplit step's loss,
NLL and gradients, and numbers that do not depend on the thread count."""
import threading

import pytest
import torch

from mechanism import device
from mechanism.flow import FlowConfig, PatchFlow, patch_nll
from mechanism.train.config import TrainConfig
from mechanism.train.fit import fit_flow
from mechanism.train.loss import TailLossConfig, loss_shares, tail_aware_loss
from mechanism.train.parallel import MICRO_BATCH, ParallelStep, micro_batch_sizes


@pytest.mark.parametrize("images,size,sizes", [
    (16, 8, [8, 8]), (10, 4, [4, 4, 2]), (3, 8, [3]), (8, 8, [8]), (17, 8, [8, 8, 1])])
def test_micro_batch_sizes(images, size, sizes):
    assert micro_batch_sizes(images, size) == sizes and sum(sizes) == images


def _flow(seed=0):
    torch.manual_seed(seed)
    flow = PatchFlow(6, 3, 4, FlowConfig(n_blocks=2, hidden=8, pos_channels=4)).double()
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return flow


def _shares(images, cfg=TailLossConfig(), generator=None):
    return loss_shares(cfg, images, 3 * 4, generator)


@pytest.mark.parametrize("selection", ["topk", "random"])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_micro_batches_give_the_unsplit_loss_nll_and_gradients(threads, selection):
    """Three micro-batches on 1–3 threads: the loss, NLL and gradients of the whole batch under
    tail_aware_loss with the same generator (random selection: the same draws)."""
    flow = _flow()
    x = torch.randn(2 * MICRO_BATCH + 3, 6, 3, 4, dtype=torch.float64)    # three micro-batches
    cfg = TailLossConfig(tail_weight=0.7, top_k_ratio=0.25, selection=selection)
    whole = patch_nll(flow(x))
    whole_loss = tail_aware_loss(whole, cfg, torch.Generator().manual_seed(5))
    whole_loss.backward()
    expected = [p.grad.clone() for p in flow.parameters()]
    for p in flow.parameters():
        p.grad = None
    with ParallelStep(flow, threads) as step:
        loss, nll = step(x, _shares(len(x), cfg, torch.Generator().manual_seed(5)))
    assert not nll.requires_grad and not loss.requires_grad
    assert loss.item() == pytest.approx(whole_loss.item(), rel=1e-12)
    torch.testing.assert_close(nll, whole.detach(), rtol=0, atol=1e-12)
    for p, g in zip(flow.parameters(), expected):
        torch.testing.assert_close(p.grad, g, rtol=0, atol=1e-12)


@pytest.mark.parametrize("threads", [1, 2])
def test_micro_batches_run_on_the_pool_with_one_intra_op_thread(threads):
    """Four micro-batches at 2 threads: forward, loss share and backward run on the pool's
    threads, not the caller's, each with one intra-op thread; at 1 thread on the caller's."""
    flow, seen = _flow(), {"forward": [], "share": [], "backward": []}

    def note(stage):
        seen[stage].append((threading.current_thread().name, torch.get_num_threads()))

    flow.blocks[0].register_forward_hook(lambda *_: note("forward"))
    shares = _shares(4 * MICRO_BATCH)

    def share(nll, images):
        note("share")
        nll.register_hook(lambda grad: note("backward"))
        return shares(nll, images)

    with ParallelStep(flow, threads) as step, device.torch_threads(1):
        step(torch.randn(4 * MICRO_BATCH, 6, 3, 4, dtype=torch.float64), share)
    for stage, calls in seen.items():
        assert len(calls) == 4 and {n for _, n in calls} == {1}, stage
        assert {name == threading.current_thread().name for name, _ in calls} == {threads == 1}, stage


def test_threads_must_lie_within_the_pool():
    with ParallelStep(_flow(), 2) as step:
        step.threads = 1
        with pytest.raises(ValueError, match=r"\[1, 2\]"):
            step.threads = 3
    with pytest.raises(ValueError, match="at least one thread"):
        ParallelStep(_flow(), 0)


def test_the_first_error_of_a_micro_batch_reaches_the_caller_after_all_finished():
    flow = _flow()
    calls = []

    def hook(module, inp, out):
        calls.append(len(inp[0]))
        if len(calls) == 1:
            raise ArithmeticError("boom")

    flow.blocks[1].register_forward_hook(hook)
    with ParallelStep(flow, 2) as step, pytest.raises(ArithmeticError, match="boom"):
        step(torch.randn(3 * MICRO_BATCH, 6, 3, 4, dtype=torch.float64), _shares(3 * MICRO_BATCH))
    assert len(calls) == 3                      # the others ran to the end before the raise


def _train(threads, monkeypatch, feats=None, loss_cfg=TailLossConfig(), **kw):
    """Two epochs, batches of 3 micro-batches (the last batch: 1), at ``threads`` threads."""
    monkeypatch.setenv(device.THREADS_ENV, threads)
    if feats is None:
        feats = torch.randn(4 * MICRO_BATCH - 3, 6, 3, 4, generator=torch.Generator().manual_seed(1))
    return fit_flow(feats, FlowConfig(n_blocks=2, hidden=8, pos_channels=4), loss_cfg,
                    TrainConfig(epochs=2, batch_size=3 * MICRO_BATCH, **kw), progress=False)


@pytest.mark.parametrize("selection", ["topk", "random"])
def test_weights_do_not_depend_on_the_thread_count(monkeypatch, selection):
    """Training at 1, 2, 3 and 4 threads gives bit-identical weights (micro-batches are cut by
    size, their gradients added in order; random selection's keys drawn before the split); the
    log records the threads a step kept busy, at most the batch's 3 micro-batches."""
    loss_cfg = TailLossConfig(selection=selection)
    runs = {t: _train(t, monkeypatch, loss_cfg=loss_cfg) for t in ("1", "2", "3", "4")}
    for t, (_, log) in runs.items():
        assert [e.threads for e in log] == [min(int(t), 3)] * 2
    for t in ("2", "3", "4"):
        for a, b in zip(runs["1"][0].state_dict().values(), runs[t][0].state_dict().values()):
            assert torch.equal(a, b)


def test_weights_do_not_depend_on_a_count_that_changes_between_epochs(monkeypatch):
    """Auto mode's count may change every epoch; alternating 1 and 3 threads gives the weights
    of a fixed count."""
    counts = iter([1, 3, 1, 3])
    monkeypatch.setattr(device.CpuThreads, "update", lambda self: next(counts))
    with device.torch_threads(3):
        changing, log = _train("3", monkeypatch)
    assert [e.threads for e in log] == [1, 3]
    monkeypatch.undo()
    fixed, _ = _train("1", monkeypatch)
    for a, b in zip(changing.state_dict().values(), fixed.state_dict().values()):
        assert torch.equal(a, b)


def test_loss_and_optimiser_run_on_one_thread_and_the_count_comes_back(monkeypatch):
    """During training the caller's thread runs at one intra-op thread; afterwards its count is
    back, also when a micro-batch fails on a pool thread."""
    seen = []
    original = torch.optim.AdamW.step
    monkeypatch.setattr(torch.optim.AdamW, "step",
                        lambda self, *a, **k: (seen.append(torch.get_num_threads()), original(self, *a, **k))[1])
    main = threading.current_thread()

    def fail_off_the_caller(module, inp, out):
        if threading.current_thread() is not main:
            raise ArithmeticError("boom")

    with device.torch_threads(2):
        _train("2", monkeypatch)
        assert seen and set(seen) == {1} and torch.get_num_threads() == 2
        hook = torch.nn.modules.module.register_module_forward_hook(fail_off_the_caller)
        try:
            with pytest.raises(ArithmeticError, match="boom"):
                _train("2", monkeypatch)
        finally:
            hook.remove()
        assert torch.get_num_threads() == 2


def test_training_under_no_grad_still_trains_and_inference_mode_is_refused(monkeypatch):
    from mechanism.errors import MechanismError
    with torch.no_grad():
        flow, log = _train("2", monkeypatch)
    assert log[-1].loss == _train("2", monkeypatch)[1][-1].loss
    with torch.inference_mode(), pytest.raises(MechanismError, match="inference_mode"):
        _train("1", monkeypatch)
