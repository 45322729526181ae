"""``mechanism evaluate`` end to end: saved maps let anyone recompute the metrics independently."""
import json

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.metrics import average_precision_score, roc_auc_score

from cli.main import app


def test_evaluate_writes_metrics_and_recomputable_maps(tiny_ckpt, tiny_cache, tmp_path):
    out_json, out_maps = tmp_path / "m.json", tmp_path / "maps.npz"
    result = CliRunner().invoke(app, ["evaluate", "--ckpt", str(tiny_ckpt), "--json", str(out_json),
                                      "--save-maps", str(out_maps), "--cache-dir", str(tiny_cache),
                                      "--quiet"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(out_json.read_text())
    saved = np.load(out_maps)
    assert saved["maps"].shape == (8, 64, 64) and saved["maps"].dtype == np.float32
    assert saved["masks"].shape == (8, 64, 64) and len(saved["paths"]) == 8
    labels, masks, maps = saved["labels"], saved["masks"], saved["maps"]
    assert metrics["pixel_auroc"] == pytest.approx(roc_auc_score(masks.ravel(), maps.ravel()))
    assert metrics["pixel_ap"] == pytest.approx(average_precision_score(masks.ravel(), maps.ravel()))
    assert metrics["image_auroc"] == pytest.approx(roc_auc_score(labels, saved["scores"]))
    assert metrics["map_score"] == "latent" and str(saved["map_score"]) == "latent"
    # default image score: the top patches over 3/196 of the image; of a 4×4 grid that is 1 patch
    assert saved["patch_scores"].shape == (8, 4, 4)
    assert np.allclose(saved["scores"], saved["patch_scores"].reshape(8, -1).max(axis=1))
    # the latent energy is the NLL without its log-det share: it differs from the NLL per patch
    assert saved["patch_scores"].shape == saved["patch_nll"].shape
    assert not np.allclose(saved["patch_scores"], saved["patch_nll"])
    assert 0.0 <= metrics["aupro"] <= 1.0
    assert "Pixel AP" in result.output


def test_nll_map_score_builds_maps_from_the_patch_nll(tiny_ckpt, tiny_cache, tmp_path):
    out_maps = tmp_path / "maps.npz"
    result = CliRunner().invoke(app, ["evaluate", "--ckpt", str(tiny_ckpt), "--save-maps", str(out_maps),
                                      "--map-score", "nll", "--image-score", "top3_mean",
                                      "--cache-dir", str(tiny_cache), "--quiet"])
    assert result.exit_code == 0, result.output
    saved = np.load(out_maps)
    np.testing.assert_array_equal(saved["patch_scores"], saved["patch_nll"])
    top3 = np.sort(saved["patch_nll"].reshape(8, -1), axis=1)[:, -3:].mean(axis=1)
    assert np.allclose(saved["scores"], top3)


def test_same_command_same_numbers(tiny_ckpt, tiny_cache, tmp_path):
    outs = []
    for name in ("a.json", "b.json"):
        CliRunner().invoke(app, ["evaluate", "--ckpt", str(tiny_ckpt), "--json", str(tmp_path / name),
                                 "--cache-dir", str(tiny_cache), "--quiet", "--image-score", "max"])
        outs.append(json.loads((tmp_path / name).read_text()))
    assert outs[0] == outs[1] and outs[0]["image_score"] == "max"


def test_patch_scores_do_not_depend_on_how_the_flow_calls_are_cut(tiny_ckpt, monkeypatch):
    """On a CPU the scoring pass takes at most CPU_FLOW_ROWS patch rows per flow call: cut into
    one image per call, two, or one call for all, the scores are bit for bit the same."""
    import torch

    from mechanism.eval import detector as detector_module
    det = detector_module.load_detector(tiny_ckpt, "cpu")
    features = torch.randn(5, det.flow.dim, det.flow.height, det.flow.width,
                           generator=torch.Generator().manual_seed(0))
    calls = []
    det.flow.register_forward_hook(lambda module, inputs, out: calls.append(len(inputs[0])))
    whole = det.patch_scores(features, ("nll", "latent"), batch_size=64)
    assert calls == [5]
    rows = det.flow.height * det.flow.width
    for budget, batch_size, sizes in ((2 * rows - 1, 64, [1] * 5), (3 * rows - 1, 64, [2, 2, 1]),
                                      (1, 64, [1] * 5), (64 * rows, 2, [2, 2, 1])):
        calls.clear()
        monkeypatch.setattr(detector_module, "CPU_FLOW_ROWS", budget)
        cut = det.patch_scores(features, ("nll", "latent"), batch_size=batch_size)
        assert calls == sizes, (budget, batch_size)
        for name in whole:
            assert torch.equal(cut[name], whole[name])
