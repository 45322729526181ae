"""The Tail-Aware Loss against hand-computed values and its documented k rule."""
import pytest
import torch

from mechanism.errors import MechanismError
from mechanism.train.loss import TailLossConfig, select_tail, tail_aware_loss, tail_k, loss_shares


@pytest.mark.parametrize("ratio,k", [(0.01, 2), (0.02, 4), (0.03, 6), (0.05, 10), (0.10, 20),
                                     (0.20, 39), (0.50, 98), (1.0, 196)])
def test_k_reproduces_the_study_table(ratio, k):
    assert tail_k(196, ratio) == k


def test_k_is_at_least_one_and_grid_aware():
    assert tail_k(16, 0.02) == 1
    assert tail_k(784, 0.02) == 16


def _nll():
    # two images of 2×5 patches with distinct values
    return torch.arange(20, dtype=torch.float64).reshape(2, 2, 5) ** 1.5


def test_lambda_zero_is_the_plain_mean_and_lambda_one_pure_topk():
    nll = _nll()
    assert tail_aware_loss(nll, TailLossConfig(0.0, 0.2)).item() == pytest.approx(nll.mean().item())
    flat = nll.flatten(1)
    top2 = flat.sort(dim=1, descending=True).values[:, :2].mean()
    assert tail_aware_loss(nll, TailLossConfig(1.0, 0.2)).item() == pytest.approx(top2.item())


def test_mixture_by_hand():
    nll = torch.tensor([[[1.0, 2.0], [3.0, 10.0]]])          # N = 4, r = 0.25 → k = 1
    loss = tail_aware_loss(nll, TailLossConfig(0.7, 0.25))
    assert loss.item() == pytest.approx(0.3 * 4.0 + 0.7 * 10.0)


def test_topk_is_per_image_not_over_the_batch():
    nll = torch.tensor([[[0.0, 1.0]], [[100.0, 101.0]]])     # k = 1 per image
    loss = tail_aware_loss(nll, TailLossConfig(1.0, 0.5))
    assert loss.item() == pytest.approx((1.0 + 101.0) / 2)


def test_gradient_goes_to_tail_patches_only_with_lambda_one():
    nll = _nll().requires_grad_(True)
    tail_aware_loss(nll, TailLossConfig(1.0, 0.2)).backward()
    grad = nll.grad.flatten(1)
    assert torch.count_nonzero(grad, dim=1).tolist() == [2, 2]
    assert torch.allclose(grad.sum(), torch.tensor(1.0, dtype=torch.float64))


def test_random_selection_is_seeded_and_not_topk():
    nll = torch.randn(8, 14, 14)
    a = select_tail(nll, 4, "random", torch.Generator().manual_seed(3))
    b = select_tail(nll, 4, "random", torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert not torch.equal(a.sort().values, select_tail(nll, 4, "topk").sort().values)
    assert all(len(set(row.tolist())) == 4 for row in a)


@pytest.mark.parametrize("kwargs", [dict(tail_weight=-0.1), dict(tail_weight=1.5),
                                    dict(top_k_ratio=0.0), dict(top_k_ratio=1.01),
                                    dict(selection="hardest")])
def test_out_of_range_settings_are_refused(kwargs):
    with pytest.raises(MechanismError):
        TailLossConfig(**kwargs)


@pytest.mark.parametrize("selection", ["topk", "random"])
def test_shares_of_a_split_batch_add_up_to_the_loss_and_draw_what_it_draws(selection):
    """A batch of 5 cut into parts of 2, 2 and 1 (in any order): the shares add up to
    tail_aware_loss, their gradients to its gradient, and the generator ends where the loss's
    leaves it."""
    cfg = TailLossConfig(tail_weight=0.6, top_k_ratio=0.25, selection=selection)
    nll = torch.randn(5, 3, 4, dtype=torch.float64, requires_grad=True)
    draws, shares_draws = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    whole = tail_aware_loss(nll, cfg, draws)
    (expected,) = torch.autograd.grad(whole, nll)
    share = loss_shares(cfg, 5, 12, shares_draws)
    parts = [slice(4, 5), slice(0, 2), slice(2, 4)]
    total = sum(share(nll[part], part) for part in parts)
    (grad,) = torch.autograd.grad(total, nll)
    assert total.item() == pytest.approx(whole.item(), rel=1e-12)
    torch.testing.assert_close(grad, expected, rtol=0, atol=1e-15)
    assert torch.equal(draws.get_state(), shares_draws.get_state())
