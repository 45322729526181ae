"""Inputs that keep a photograph's aspect ratio: ``--input-size HxW`` from the command line
through the backbone, the checkpoint, evaluation and every analysis."""
from __future__ import annotations

import json

import click
import cv2
import numpy as np
import pytest
import torch

from cli.options import InputSize
from faults import invoke, succeeds
from mechanism.backbone.model import BackboneConfig, load_backbone
from mechanism.data.images import as_shape, load_image, load_mask
from mechanism.errors import MechanismError
from mechanism.train.checkpoint import load_checkpoint


@pytest.mark.parametrize("text, value", [("224", (224, 224)), ("192x448", (192, 448)), ("192×448", (192, 448)),
                                         (" 64X128 ", (64, 128)), ("96x96", (96, 96))])
def test_the_option_reads_one_side_or_height_by_width(text, value):
    assert InputSize().convert(text, None, None) == value


@pytest.mark.parametrize("text", ["", "x", "64x", "64x64x64", "-64", "6.4", "64x0", "5000", "١٢٨"])
def test_the_option_refuses_anything_else(text):
    with pytest.raises(click.BadParameter):
        InputSize().convert(text, None, None)


@pytest.mark.parametrize("size", [0, 4097, (64,), (64, 0), (64, 64, 64), True, (64.0, 64), "64"])
def test_a_bad_shape_is_one_error(size):
    with pytest.raises(MechanismError, match="an input size is one side or"):
        as_shape(size)


def test_the_config_stores_a_square_as_one_side_and_a_rectangle_as_height_width(tmp_path):
    assert BackboneConfig(input_size=(64, 64)) == BackboneConfig(input_size=64)
    assert BackboneConfig(input_size=64).to_dict()["input_size"] == 64     # as before: old readers, cache keys
    wide = BackboneConfig(input_size=(64, 128))
    assert wide.input_shape == (64, 128) and wide.to_dict()["input_size"] == [64, 128]
    torch.save({"backbone": wide.to_dict()}, tmp_path / "c.pt")
    assert BackboneConfig.from_dict(torch.load(tmp_path / "c.pt", weights_only=True)["backbone"]) == wide
    with pytest.raises(ValueError, match="input_size: .* fits none of"):
        BackboneConfig.from_dict({**wide.to_dict(), "input_size": [64, 128, 3]})


def test_images_and_masks_are_resized_to_height_by_width(tmp_path):
    image = np.arange(4 * 8 * 3, dtype=np.uint8).reshape(4, 8, 3) * 2
    cv2.imwrite(str(tmp_path / "i.png"), image)
    half = load_image(tmp_path / "i.png", (2, 4))                     # area shrink: 2×2 block means
    rgb = image[..., ::-1].astype(np.float64) / 255
    blocks = rgb.reshape(2, 2, 4, 2, 3).mean(axis=(1, 3)).transpose(2, 0, 1)
    assert half.shape == (3, 2, 4)
    np.testing.assert_allclose(half, blocks, atol=0.6 / 255)          # cv2 rounds to 8 bits
    assert load_image(tmp_path / "i.png", (4, 8)).shape == (3, 4, 8)  # the file's own shape: unchanged
    np.testing.assert_array_equal(load_image(tmp_path / "i.png", (4, 8)), rgb.transpose(2, 0, 1).astype(np.float32))
    mask = np.zeros((4, 8), np.uint8)
    mask[2:4, 6:8] = 255
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    small = load_mask(tmp_path / "m.png", (2, 4), tmp_path / "i.png")
    np.testing.assert_array_equal(small, [[0, 0, 0, 0], [0, 0, 0, 1]])   # the defect keeps its place


def test_the_backbone_grid_follows_the_rectangle():
    backbone = load_backbone(BackboneConfig(layers=(3,), local_avg=0, input_size=(64, 128)))
    assert backbone.grid() == (4, 8)
    assert backbone(torch.rand(2, 3, 64, 128)).shape == (2, 112, 4, 8)
    with pytest.raises(ValueError, match=r"expects \(B, 3, 64, 128\)"):
        backbone(torch.rand(1, 3, 128, 64))


@pytest.fixture(scope="module")
def wide_data(tiny_data, tmp_path_factory):
    """tiny brick as 96×192 (h×w) photographs: each image and mask doubled side by side and
    enlarged 1.5× (masks by nearest neighbour), so the 48×128 input below resizes them."""
    root = tmp_path_factory.mktemp("wide") / "data"
    for path in (tiny_data / "brick").rglob("*.png"):
        target = root / "brick" / path.relative_to(tiny_data / "brick")
        target.parent.mkdir(parents=True, exist_ok=True)
        pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        doubled = np.concatenate([pixels, pixels], axis=1)
        cv2.imwrite(str(target), cv2.resize(doubled, (192, 96), interpolation=cv2.INTER_NEAREST))
    return root


def test_train_evaluate_and_analyse_on_a_rectangular_grid(wide_data, tmp_path):
    # 48×128 on stride 16: a 3×8 grid, which a swapped height and width cannot tile (128 / 3)
    common = ["--data", wide_data, "--category", "brick", "--epochs", "2", "--input-size", "48x128",
              "--layers", "3", "--local-avg", "0", "--flow-blocks", "2", "--flow-hidden", "32",
              "--cache-dir", tmp_path / "cache", "--quiet"]
    for name, weight in (("tail", "0.7"), ("base", "0")):
        succeeds(["train", *common, "--out", tmp_path / f"{name}.pt", "--tail-weight", weight])
    ckpt = load_checkpoint(tmp_path / "tail.pt")
    assert ckpt.backbone["config"]["input_size"] == [48, 128] and ckpt.grid == (3, 8, 112)

    succeeds(["evaluate", "--ckpt", tmp_path / "tail.pt", "--data", wide_data, "--category", "brick",
              "--save-maps", tmp_path / "maps.npz", "--cache-dir", tmp_path / "cache", "--quiet"])
    saved = np.load(tmp_path / "maps.npz")
    assert saved["maps"].shape == saved["masks"].shape == (8, 48, 128)
    assert saved["patch_nll"].shape == (8, 3, 8)
    for path, mask in zip(saved["paths"], saved["masks"]):     # cv2 takes (width, height)
        file = str(path).replace("/test/", "/ground_truth/").replace(".png", "_mask.png")
        expected = (np.zeros((48, 128)) if "/good/" in str(path) else
                    cv2.resize(cv2.imread(file, cv2.IMREAD_GRAYSCALE), (128, 48),
                               interpolation=cv2.INTER_NEAREST) > 0)
        np.testing.assert_array_equal(mask, expected)
    assert saved["masks"].any()

    out = tmp_path / "analysis"
    result = invoke(["analyze", "--hypothesis", "all", "--ckpt", tmp_path / "tail.pt", "--baseline-ckpt",
                     tmp_path / "base.pt", "--data", wide_data, "--category", "brick", "--out", out,
                     "--bootstrap", "20", "--cache-dir", tmp_path / "cache", "--quiet"])
    assert result.exit_code == 0, (result.output, result.exception)
    tables = {h: json.loads((out / "tables" / f"{h}.json").read_text()) for h in ("H1", "H3", "H4", "H7")}
    for table in tables.values():
        assert table["context"]["n_patches"] == 24
        assert (table["context"]["grid_h"], table["context"]["grid_w"]) == (3, 8)
    assert np.shape(tables["H1"]["tail_share_map"]) == (3, 8)
    assert {np.shape(c["mean_gradient_map"]) for c in tables["H3"]["conditions"]} == {(3, 8)}
    assert "grid 3×8" in (out / "tables" / "H1.md").read_text()


def test_a_study_plan_gives_every_sweep_its_input_size_and_stages(tmp_path):
    from mechanism.pipelines.study_plan import StudyPlan, study_specs
    plan = StudyPlan(categories=("rail",), input_size=(224, 544), layers=[2, 3])
    assert plan.to_dict()["input_size"] == [224, 544] and StudyPlan(("rail",), input_size=(96, 96)).input_size == 96
    assert StudyPlan(("rail",), input_size=(96, 96)).to_dict()["input_size"] == 96   # as checkpoints store it
    assert {spec.backbone for spec in study_specs(plan, tmp_path).values()} == {
        BackboneConfig(layers=(2, 3), input_size=(224, 544))}
    with pytest.raises(MechanismError, match="an input size"):
        StudyPlan(categories=("rail",), input_size=(224, 0))


def test_a_study_trains_and_caches_every_run_at_its_input_size(wide_data, tmp_path):
    cache = tmp_path / "cache"
    succeeds(["study", "--data", wide_data, "--categories", "brick", "--seeds", "0", "--epochs", "1",
              "--input-size", "48x128", "--layers", "3", "--out", tmp_path / "study", "--runs",
              tmp_path / "runs", "--n-boot", "0", "--cache-dir", cache, "--quiet"])
    grids = {load_checkpoint(p).grid for p in (tmp_path / "runs").rglob("model.pt")}
    assert grids == {(3, 8, 112)}
    entries = [torch.load(p, weights_only=True) for p in cache.glob("*.pt")]
    assert entries                 # none at another size: the feature jobs used the study's backbone
    assert {(e["key_fields"]["backbone"]["input_size"], tuple(e["key_fields"]["backbone"]["layers"]),
             tuple(e["features"].shape[1:])) for e in entries} == {((48, 128), (3,), (112, 3, 8))}
    report = (tmp_path / "study" / "REPORT.md").read_text()
    assert "images of 96×192 px, resized to 48×128 (aspect w/h 2.00 made 2.67)" in report
    assert "no defect mask loses all its pixels); a 3×8 grid cell covers 32×24 original px" in report
