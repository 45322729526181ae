"""Training: determinism, divergence handling, the written files."""
import csv

import pytest
import torch
from conftest import TINY_FLOW

from mechanism.flow import FlowConfig
from mechanism.train.checkpoint import load_checkpoint
from mechanism.train.config import TrainConfig
from mechanism.train.fit import TrainingDiverged, fit_flow
from mechanism.train.loss import TailLossConfig


def _features(seed=0):
    return torch.randn(6, 8, 3, 3, generator=torch.Generator().manual_seed(seed))


def test_same_seed_same_weights_and_other_seed_differs():
    cfg = TrainConfig(epochs=2, batch_size=4, seed=5)
    a, log_a = fit_flow(_features(), TINY_FLOW, TailLossConfig(), cfg, progress=False)
    b, log_b = fit_flow(_features(), TINY_FLOW, TailLossConfig(), cfg, progress=False)
    c, _ = fit_flow(_features(), TINY_FLOW, TailLossConfig(), TrainConfig(epochs=2, batch_size=4, seed=6),
                    progress=False)
    for (name, pa), pb, pc in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.state_dict().values(), c.state_dict().values()))
    assert [r.loss for r in log_a] == [r.loss for r in log_b]


def test_training_lowers_the_nll():
    feats = _features() * 3 + 1
    _, log = fit_flow(feats, FlowConfig(n_blocks=2, hidden=16, pos_channels=4), TailLossConfig(0.0, 0.5),
                      TrainConfig(epochs=30, batch_size=6, lr=1e-2), progress=False)
    assert log[-1].mean_nll < log[0].mean_nll - 0.5
    assert all(r.tail_nll >= r.mean_nll for r in log)


def test_non_finite_loss_names_epoch_and_batch():
    feats = _features()
    feats[4, 0, 0, 0] = float("nan")          # second batch of the first epoch holds it
    with pytest.raises(TrainingDiverged, match=r"epoch 1, batch \d/2"):
        fit_flow(feats, TINY_FLOW, TailLossConfig(), TrainConfig(epochs=1, batch_size=4), progress=False)


def test_checkpoint_and_log_are_written(tiny_ckpt):
    ckpt = load_checkpoint(tiny_ckpt)
    assert ckpt.grid == (4, 4, 112) and ckpt.data.category == "brick" and ckpt.data.n_train == 8
    assert ckpt.loss == TailLossConfig(0.7, 0.1)
    with open(tiny_ckpt.with_suffix(".log.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[-1]["loss"]) == pytest.approx(ckpt.summary["final_loss"])


def test_cli_trains_the_options_it_is_given(tiny_data, tiny_cache, tmp_path):
    from click.testing import CliRunner

    from cli.main import app
    out = tmp_path / "m.pt"
    result = CliRunner().invoke(app, ["train", "--data", str(tiny_data), "--category", "grass",
                                      "--out", str(out), "--input-size", "64", "--epochs", "1",
                                      "--local-avg", "0", "--flow-blocks", "2", "--flow-hidden", "16",
                                      "--no-spatial-context", "--selection", "random", "--tail-weight", "1",
                                      "--precision", "fp32",
                                      "--cache-dir", str(tiny_cache), "--quiet"])
    assert result.exit_code == 0, result.output
    ckpt = load_checkpoint(out)
    assert ckpt.backbone["config"]["local_avg"] == 0 and ckpt.data.category == "grass"
    assert (ckpt.flow.n_blocks, ckpt.flow.hidden, ckpt.flow.spatial_context) == (2, 16, False)
    assert ckpt.loss == TailLossConfig(1.0, 0.02, "random")
    assert ckpt.train.precision == "fp32"


def test_precision_defaults_to_bf16_and_old_configs_read_as_fp32():
    from mechanism.errors import MechanismError
    assert TrainConfig().precision == "bf16"
    old = {k: v for k, v in TrainConfig().to_dict().items() if k != "precision"}
    assert TrainConfig.from_dict(old) == TrainConfig(precision="fp32")
    assert TrainConfig.from_dict(TrainConfig().to_dict()) == TrainConfig()
    with pytest.raises(MechanismError, match="unknown training precision 'fp16'"):
        TrainConfig(precision="fp16")


def test_cli_precision_choices_are_the_library_s():
    from cli.main import app
    from mechanism.train.config import PRECISIONS
    option = next(o for o in app.commands["train"].params if o.name == "precision")
    assert tuple(option.type.choices) == PRECISIONS


@pytest.mark.parametrize("has_kernels, precision, warned", [
    (False, "bf16", True), (True, "bf16", False), (False, "fp32", False)])
def test_bf16_on_a_cpu_without_bf16_kernels_warns(monkeypatch, recwarn, has_kernels, precision, warned):
    import mechanism.train.fit as fit
    monkeypatch.setattr(fit, "cpu_has_bf16_kernels", lambda: has_kernels)
    fit_flow(_features(), TINY_FLOW, TailLossConfig(), TrainConfig(epochs=1, batch_size=4, precision=precision),
             progress=False)
    messages = [str(w.message) for w in recwarn if "bfloat16 kernels" in str(w.message)]
    assert len(messages) == int(warned), messages
    assert not warned or "--precision fp32" in messages[0]


def test_cpu_bf16_probe_runs_on_this_torch():
    """The probe rests on a private torch op: a torch without it fails here, not in training."""
    from mechanism.device import cpu_has_bf16_kernels
    assert isinstance(cpu_has_bf16_kernels(), bool)
