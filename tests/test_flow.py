"""The patch flow against exact truths: inversion, log-det against an autograd Jacobian."""
import math
from pathlib import Path

import pytest
import torch

from dtypes import ProductDtypes
from mechanism.flow import FlowConfig, FlowOutput, PatchFlow, latent_energy, patch_nll
from mechanism.flow.positional import positional_encoding_2d


def _randomised_flow(dim, h, w, spatial_context=True, seed=0, n_blocks=3, subnet_kernel=1,
                     subnets="joint"):
    """A flow whose zero-initialised last layers are replaced by random ones (a non-trivial map)."""
    torch.manual_seed(seed)
    cfg = FlowConfig(n_blocks=n_blocks, hidden=16, pos_channels=8, spatial_context=spatial_context,
                     subnet_kernel=subnet_kernel, subnets=subnets)
    flow = PatchFlow(dim, h, w, cfg).double()
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return flow


@pytest.mark.parametrize("subnets", ["joint", "separate"])
@pytest.mark.parametrize("spatial_context,subnet_kernel", [(True, 1), (False, 1), (False, 3)])
@pytest.mark.parametrize("dim", [2, 5, 8])
def test_round_trip_and_inverse_logdet(spatial_context, subnet_kernel, dim, subnets):
    flow = _randomised_flow(dim, 4, 3, spatial_context, subnet_kernel=subnet_kernel, subnets=subnets)
    x = torch.randn(3, dim, 4, 3, dtype=torch.float64)
    fwd = flow(x)
    back = flow.inverse(fwd.z)
    assert torch.allclose(back.z, x, atol=1e-10)
    assert torch.allclose(back.logdet, -fwd.logdet, atol=1e-10)


@pytest.mark.parametrize("subnets", ["joint", "separate"])
@pytest.mark.parametrize("spatial_context,subnet_kernel", [(True, 1), (False, 1), (False, 3), (True, 3)])
@pytest.mark.parametrize("h, w", [(3, 3), (2, 5)])
def test_logdet_shares_sum_to_autograd_jacobian(spatial_context, subnet_kernel, subnets, h, w):
    dim = 4
    flow = _randomised_flow(dim, h, w, spatial_context, seed=1, subnet_kernel=subnet_kernel,
                            subnets=subnets)
    x = torch.randn(1, dim, h, w, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: flow(v).z, x).reshape(dim * h * w, dim * h * w)
    sign, logabsdet = torch.linalg.slogdet(jac)
    assert sign != 0
    shares = flow(x).logdet
    assert shares.shape == (1, h, w)
    assert torch.allclose(shares.sum(), logabsdet, atol=1e-9)


def test_patches_interact_only_with_spatial_context_or_wider_subnets():
    dim, h, w = 4, 3, 3
    x = torch.randn(1, dim, h, w, dtype=torch.float64)
    for ctx, kernel, expect_interaction in [(True, 1, True), (False, 1, False), (False, 3, True)]:
        flow = _randomised_flow(dim, h, w, ctx, seed=2, subnet_kernel=kernel)
        jac = torch.autograd.functional.jacobian(lambda v: flow(v).z, x)[0, :, 1, 1, 0]  # d z[:,1,1] / d x
        others = jac.clone()
        others[:, :, 1, 1] = 0  # remove the patch's own block
        assert (others.abs().max() > 1e-8) == expect_interaction
        assert flow.patches_interact == expect_interaction


def test_fresh_flow_is_identity_and_nll_is_standard_normal():
    flow = PatchFlow(6, 2, 2, FlowConfig(n_blocks=2, hidden=8, pos_channels=4))
    x = torch.randn(2, 6, 2, 2)
    out = flow(x)
    perm = torch.arange(6)
    for block in flow.blocks:
        perm = perm[block.permutation]
    assert torch.allclose(out.z, x[:, perm])
    assert torch.count_nonzero(out.logdet) == 0
    # NLL of an identity flow = mean over channels of the N(0,1) negative log-density
    expected = (-torch.distributions.Normal(0.0, 1.0).log_prob(x)).mean(dim=1)
    assert torch.allclose(patch_nll(out), expected, atol=1e-6)


def test_patch_nll_formula_by_hand():
    z = torch.zeros(1, 2, 1, 2)
    z[0, :, 0, 1] = torch.tensor([3.0, 4.0])       # ‖z‖² = 25
    logdet = torch.tensor([[[0.0, 1.0]]])
    nll = patch_nll(FlowOutput(z, logdet))
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    assert nll[0, 0, 0].item() == pytest.approx(half_log_2pi)
    assert nll[0, 0, 1].item() == pytest.approx((12.5 - 1.0) / 2 + half_log_2pi)
    energy = latent_energy(FlowOutput(z, logdet))     # ½‖z‖²/D, no log-det, no constant
    assert energy.shape == (1, 1, 2)
    assert energy[0, 0].tolist() == pytest.approx([0.0, 12.5 / 2])


@pytest.mark.parametrize("subnets", ["joint", "separate"])
def test_log_scale_is_soft_clamped(subnets):
    flow = _randomised_flow(4, 2, 2, seed=3, n_blocks=1, subnets=subnets)
    block = flow.blocks[0]
    with torch.no_grad():
        if subnets == "joint":
            block.subnet[-1].bias[:2].fill_(1e3)     # the log-scale half of the output
        else:
            block.scale_net[-1].bias.fill_(1e3)
        block.global_log_scale.zero_()
    out = flow(torch.randn(2, 4, 2, 2, dtype=torch.float64))
    assert out.logdet.abs().max() <= 2 * flow.cfg.clamp + 1e-9  # two active channels, |s| < α


def test_config_without_subnets_field_is_the_separate_design():
    """Checkpoints written before the joint subnet store no ``subnets``: they must rebuild the
    two-subnet flow their weights belong to, and a fresh config defaults to the joint one."""
    old = {k: v for k, v in FlowConfig(n_blocks=1, hidden=8, pos_channels=4).to_dict().items()
           if k != "subnets"}
    cfg = FlowConfig.from_dict(old)
    assert cfg.subnets == "separate" and FlowConfig(subnets="joint").subnets == "joint"
    names = set(PatchFlow(4, 3, 3, cfg).state_dict())
    assert "blocks.0.scale_net.0.weight" in names and "blocks.0.subnet.0.weight" not in names
    assert FlowConfig.from_dict(FlowConfig().to_dict()) == FlowConfig()


def test_joint_subnet_halves_are_log_scale_and_shift():
    """With the joint subnet's output split by hand, one block is exactly
    ``y2 = x2·exp(α·tanh(s/α)) + t`` before the global affine and permutation."""
    torch.manual_seed(4)
    flow = _randomised_flow(4, 2, 2, spatial_context=False, n_blocks=1)
    block = flow.blocks[0]
    with torch.no_grad():
        block.global_log_scale.zero_()
        block.global_shift.zero_()
    x = torch.randn(1, 4, 2, 2, dtype=torch.float64)
    raw = block.subnet(torch.cat([x[:, :2], flow.cond.double()], dim=1))
    s = flow.cfg.clamp * torch.tanh(raw[:, :2] / flow.cfg.clamp)
    expected = torch.cat([x[:, :2], x[:, 2:] * torch.exp(s) + raw[:, 2:]], dim=1)[:, block.permutation]
    out = flow(x)
    assert torch.allclose(out.z, expected, atol=1e-12)
    assert torch.allclose(out.logdet, s.sum(dim=1), atol=1e-12)


def _nchw_block(block, x, cond):
    """One block written out in the NCHW layout with its ``Conv2d`` modules called as
    convolutions (the code before the patch-row layout): ``x: (B, D, H, W)``, ``cond: (1, P, H, W)``."""
    x1, x2 = x[:, :block.passive], x[:, block.passive:]
    parts = [x1, cond.expand(x.shape[0], -1, -1, -1)]
    if block.context is not None:
        parts.append(block.context(x1))
    h = torch.cat(parts, dim=1)
    if block.subnets == "joint":
        s_raw, t = block.subnet(h).chunk(2, dim=1)
    else:
        s_raw, t = block.scale_net(h), block.shift_net(h[:, :block.passive + cond.shape[1]])
    s = block.clamp * torch.tanh(s_raw / block.clamp)
    y = torch.cat([x1, x2 * torch.exp(s) + t], dim=1)
    y = y * torch.exp(block.global_log_scale)[None, :, None, None] + block.global_shift[None, :, None, None]
    return y[:, block.permutation], s.sum(dim=1) + block.global_log_scale.sum()


@pytest.mark.parametrize("subnets", ["joint", "separate"])
@pytest.mark.parametrize("spatial_context,subnet_kernel", [(True, 1), (False, 1), (False, 3), (True, 3)])
def test_patch_rows_compute_the_nchw_convolutions(spatial_context, subnet_kernel, subnets):
    """The blocks run on patch rows with their 1×1 convolutions as matrix products; the same
    weights called as NCHW convolutions give the same latents and log-dets (a 2×5 grid, so a
    transposed row order would show)."""
    flow = _randomised_flow(5, 2, 5, spatial_context, seed=6, subnet_kernel=subnet_kernel, subnets=subnets)
    x = torch.randn(3, 5, 2, 5, dtype=torch.float64)
    z, logdet = x, torch.zeros(3, 2, 5, dtype=torch.float64)
    for block in flow.blocks:
        z, ld = _nchw_block(block, z, flow.cond)
        logdet = logdet + ld
    out = flow(x)
    torch.testing.assert_close(out.z, z, rtol=0, atol=1e-10)      # float64: summation order only
    torch.testing.assert_close(out.logdet, logdet, rtol=0, atol=1e-10)
    assert out.z.is_contiguous()


def test_wrong_input_shape_is_refused():
    flow = PatchFlow(4, 3, 3, FlowConfig(n_blocks=1, hidden=8, pos_channels=4))
    with pytest.raises(ValueError, match="expects"):
        flow(torch.randn(1, 4, 3, 4))


def test_positional_encoding_distinguishes_cells():
    enc = positional_encoding_2d(8, 5, 7)
    flat = enc.reshape(8, -1).T
    assert torch.cdist(flat, flat).add(torch.eye(35) * 10).min() > 1e-3
    with pytest.raises(ValueError):
        positional_encoding_2d(6, 2, 2)


def test_a_cell_encodes_its_row_and_column_whatever_the_grid_shape():
    wide, square = positional_encoding_2d(8, 3, 5), positional_encoding_2d(8, 3, 3)
    assert wide.shape == (8, 3, 5)
    torch.testing.assert_close(wide[:, :, :3], square, rtol=0, atol=0)
    torch.testing.assert_close(wide[:4], wide[:4, :, :1].expand(4, 3, 5))    # rows: same across a row


def test_a_flow_saved_before_the_joint_subnet_loads_and_scores_the_same():
    """``tests/data/flow_before_joint_subnet.pt`` was written by the code of commit 28cfa69
    (two subnets, no ``subnets`` field): its config, weights, an input and the NLL that code
    computed. Loading goes through ``FlowConfig.from_dict``, as ``load_checkpoint`` does."""
    saved = torch.load(Path(__file__).parent / "data" / "flow_before_joint_subnet.pt", weights_only=True)
    assert "subnets" not in saved["flow"]
    flow = PatchFlow(4, 3, 3, FlowConfig.from_dict(saved["flow"]))
    flow.load_state_dict(saved["flow_state"])             # strict: every weight has its place
    with torch.no_grad():
        # float32; written at 2 threads, tests run at 1: reductions round differently (~1e-6)
        assert torch.allclose(patch_nll(flow(saved["x"])), saved["nll"], rtol=0, atol=1e-5)


@pytest.mark.parametrize("subnets", ["joint", "separate"])
def test_under_bf16_autocast_subnets_run_in_bf16_and_the_logdet_stays_exact(subnets):
    """Mixed-precision training (``TrainConfig(precision="bf16")``): the subnets' products
    answer in bfloat16, while z and the log-det stay float32 and the log-det is still that of
    the map computed: one block's autograd Jacobian (of the same autocast forward) is
    block-triangular with the float32 diagonal exp(s), so its determinant is exact; through
    several blocks the bfloat16 off-diagonal terms would round the chain product itself."""
    dim, h, w = 4, 3, 3
    flow = _randomised_flow(dim, h, w, True, seed=2, n_blocks=1, subnets=subnets).float()
    x = torch.randn(1, dim, h, w)

    def forward(v):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return flow(v)

    with ProductDtypes() as products:
        out = forward(x)
    with ProductDtypes() as fp32_products:
        flow(x)
    assert products.seen == {torch.bfloat16} and fp32_products.seen == {torch.float32}
    assert out.z.dtype == out.logdet.dtype == torch.float32
    jac = torch.autograd.functional.jacobian(lambda v: forward(v).z, x)
    _, logabsdet = torch.linalg.slogdet(jac.reshape(dim * h * w, dim * h * w).double())
    assert out.logdet.sum().item() == pytest.approx(logabsdet.item(), abs=1e-5)
    assert not torch.equal(out.z, flow(x).z)    # bfloat16 really ran: float32 differs
