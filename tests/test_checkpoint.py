"""Checkpoints are data: round trip, validation, and refusal of anything that is not plain data."""
import os

import pytest
import torch

from mechanism.errors import MechanismError
from mechanism.eval.detector import load_detector
from mechanism.train.checkpoint import SCHEMA_VERSION, load_checkpoint, save_checkpoint


def test_round_trip_preserves_everything(tiny_ckpt, tmp_path):
    ckpt = load_checkpoint(tiny_ckpt)
    copy = save_checkpoint(ckpt, tmp_path / "copy.pt")
    again = load_checkpoint(copy)
    assert again.to_payload().keys() == ckpt.to_payload().keys()
    assert (again.backbone, again.grid, again.flow, again.loss, again.train, again.data) == \
           (ckpt.backbone, ckpt.grid, ckpt.flow, ckpt.loss, ckpt.train, ckpt.data)
    for k, v in ckpt.flow_state.items():
        assert torch.equal(v, again.flow_state[k])
    assert all(isinstance(v, str) for v in again.versions.values())


def test_the_file_is_plain_data(tiny_ckpt):
    payload = torch.load(tiny_ckpt, weights_only=True)
    assert payload["schema_version"] == SCHEMA_VERSION
    assert payload["backbone"]["weights_sha256"] and len(payload["data"]["fingerprint"]) == 64


def test_rebuilt_flow_reproduces_the_trained_nll(tiny_ckpt, tiny_data, tiny_cache):
    from mechanism.data.mvtec import read_split
    det = load_detector(tiny_ckpt, torch.device("cpu"))
    feats = det.features(read_split(tiny_data, "brick", "train"), tiny_cache, progress=False)
    nll = det.patch_nll(feats)
    assert nll.shape == (8, 4, 4) and torch.isfinite(nll).all()
    assert nll.mean().item() == pytest.approx(load_checkpoint(tiny_ckpt).summary["final_mean_nll"], abs=0.5)


class _Payload:
    """Unpickling this would create a marker file: a stand-in for malicious code."""
    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_code_payload_is_refused_unopened(tmp_path):
    bad = tmp_path / "evil.pt"
    p = _Payload()
    p.marker = str(tmp_path / "pwned")
    torch.save({"format": "tailflow-mechanism/checkpoint", "x": p}, bad)
    with pytest.raises(MechanismError, match="refused unopened"):
        load_checkpoint(bad)
    assert not os.path.exists(p.marker)


@pytest.mark.parametrize("mutate,message", [
    (lambda p: {"weights": torch.zeros(2)}, "not a tailflow-mechanism checkpoint"),
    (lambda p: {**p, "schema_version": 99}, "schema"),
    (lambda p: {k: v for k, v in p.items() if k != "loss"}, "has no 'loss' section"),
    (lambda p: {**p, "grid": {"height": 4, "width": 4, "dim": "112"}}, "grid.dim: expected int, got '112'"),
    (lambda p: {**p, "grid": {"height": 0, "width": 4, "dim": 112}}, "must be positive"),
    (lambda p: {**p, "loss": {**p["loss"], "tail_weight": 3.0}}, "loss: tail weight"),
    (lambda p: {**p, "flow": {**p["flow"], "n_blocks": 8.5}}, r"flow.n_blocks: expected int, got 8.5"),
    (lambda p: {**p, "flow": {**p["flow"], "spatial_context": 1}}, "flow.spatial_context: expected bool"),
    (lambda p: {**p, "train": {**p["train"], "momentum": 0.9}}, "train: unknown field 'momentum'"),
    (lambda p: {**p, "train": {k: v for k, v in p["train"].items() if k != "precision"}}, None),
    (lambda p: {**p, "data": {**p["data"], "n_train": "8"}}, "data.n_train: expected int"),
    (lambda p: {**p, "summary": {**p["summary"], "final_loss": float("nan")}}, "summary.final_loss: expected a finite"),
    (lambda p: {**p, "versions": {"torch": 2}}, "versions.torch: expected str"),
    (lambda p: {**p, "backbone": {"weights_sha256": "0"}}, "backbone: missing field 'config'"),
    (lambda p: {**p, "backbone": {**p["backbone"], "config": {**p["backbone"]["config"], "layers": [3, "4"]}}},
     r"backbone.config.layers\[1\]: expected int"),
    (lambda p: {**p, "flow_state": {"blocks.0.x": torch.zeros(1)}}, None),
])
def test_foreign_or_malformed_content(tiny_ckpt, tmp_path, mutate, message):
    payload = torch.load(tiny_ckpt, weights_only=True)
    path = tmp_path / "m.pt"
    torch.save(mutate(payload), path)
    if message is None and "precision" not in mutate(payload)["train"]:   # a checkpoint from before
        assert load_checkpoint(path).train.precision == "fp32"           # bf16: read as fp32
        return
    with pytest.raises(MechanismError, match=message):
        load_checkpoint(path).build_flow()


def test_missing_and_corrupt_files(tiny_ckpt, tmp_path):
    with pytest.raises(MechanismError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    cut = tmp_path / "cut.pt"
    cut.write_bytes(tiny_ckpt.read_bytes()[:500])
    with pytest.raises(MechanismError, match="corrupt"):
        load_checkpoint(cut)


def test_backbone_weights_must_match_the_checkpoint(tiny_ckpt, tmp_path):
    payload = torch.load(tiny_ckpt, weights_only=True)
    payload["backbone"]["weights_sha256"] = "0" * 64
    path = tmp_path / "other.pt"
    torch.save(payload, path)
    with pytest.raises(MechanismError, match="backbone weights differ"):
        load_detector(path, torch.device("cpu"))


def test_save_is_atomic_and_leaves_no_temporary(tiny_ckpt, tmp_path):
    ckpt = load_checkpoint(tiny_ckpt)
    target = tmp_path / "sub" / "model.pt"
    save_checkpoint(ckpt, target)
    assert [p.name for p in target.parent.iterdir()] == ["model.pt"]
