import cv2
import numpy as np
import pytest
import torch

from mechanism.backbone.features import (cache_key, cache_key_fields, cached_features,
                                         default_cache_dir, extract_features)
from mechanism.backbone.model import BackboneConfig, load_backbone
from mechanism.data.images import load_image
from mechanism.data.mvtec import read_split


def _noise_png(path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    cv2.imwrite(str(path), rng.integers(0, 256, (80, 80, 3), dtype=np.uint8))


@pytest.fixture
def samples(tmp_path):
    good = tmp_path / "data" / "tiles" / "train" / "good"
    good.mkdir(parents=True)
    (tmp_path / "data" / "tiles" / "test").mkdir()
    for i in range(5):
        _noise_png(good / f"{i:03d}.png", seed=i)
    return read_split(tmp_path / "data", None, "train")


@pytest.fixture(scope="module")
def backbone():
    return load_backbone(BackboneConfig(layers=(3,), local_avg=0, input_size=64))


@pytest.fixture
def forward_calls(backbone):
    """Counts images pushed through the backbone."""
    counter = {"images": 0}

    def hook(module, args, output):
        counter["images"] += args[0].shape[0]

    handle = backbone.register_forward_hook(hook)
    yield counter
    handle.remove()


def test_extraction_equals_one_direct_forward(backbone, samples):
    feats = extract_features(backbone, samples, batch_size=2, progress=False)
    images = torch.from_numpy(np.stack([load_image(s.path, 64) for s in samples]))
    with torch.no_grad():
        direct = backbone(images)
    assert feats.shape == (5, 112, 4, 4) and feats.dtype == torch.float32 and feats.device.type == "cpu"
    torch.testing.assert_close(feats, direct, rtol=1e-4, atol=1e-4)  # batch size changes float order


def test_second_call_is_a_hit_without_the_backbone(backbone, samples, tmp_path, forward_calls):
    cache = tmp_path / "cache"
    first = cached_features(backbone, samples, cache, progress=False)
    assert not first.from_cache and forward_calls["images"] == 5
    assert (cache / f"{first.key}.pt").is_file()
    second = cached_features(backbone, samples, cache, progress=False)
    assert second.from_cache and second.key == first.key and forward_calls["images"] == 5
    assert torch.equal(second.features, first.features)


def test_changed_image_bytes_change_the_key(backbone, samples, tmp_path, forward_calls):
    cache = tmp_path / "cache"
    first = cached_features(backbone, samples, cache, progress=False)
    _noise_png(samples[2].path, seed=99)
    second = cached_features(backbone, samples, cache, progress=False)
    assert second.key != first.key and not second.from_cache and forward_calls["images"] == 10
    assert not torch.equal(second.features[2], first.features[2])
    torch.testing.assert_close(second.features[[0, 1, 3, 4]], first.features[[0, 1, 3, 4]])


def test_other_layers_change_the_key(backbone, samples, tmp_path):
    cache = tmp_path / "cache"
    first = cached_features(backbone, samples, cache, progress=False)
    other = load_backbone(BackboneConfig(layers=(2, 3), local_avg=0, input_size=64))
    second = cached_features(other, samples, cache, progress=False)
    assert second.key != first.key and not second.from_cache
    assert second.features.shape == (5, 152, 8, 8)
    assert len(list(cache.glob("*.pt"))) == 2


def test_corrupt_cache_file_is_recomputed_and_replaced(backbone, samples, tmp_path, forward_calls):
    cache = tmp_path / "cache"
    first = cached_features(backbone, samples, cache, progress=False)
    path = cache / f"{first.key}.pt"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(UserWarning, match="unreadable"):
        second = cached_features(backbone, samples, cache, progress=False)
    assert not second.from_cache and forward_calls["images"] == 10
    torch.testing.assert_close(second.features, first.features)
    assert cached_features(backbone, samples, cache, progress=False).from_cache


def test_cache_file_for_other_inputs_is_recomputed(backbone, samples, tmp_path):
    cache = tmp_path / "cache"
    first = cached_features(backbone, samples, cache, progress=False)
    path = cache / f"{first.key}.pt"
    entry = torch.load(path, weights_only=True)
    entry["key_fields"]["data_fingerprint"] = "0" * 64
    torch.save(entry, path)
    with pytest.warns(UserWarning, match="does not match"):
        assert not cached_features(backbone, samples, cache, progress=False).from_cache


def test_cache_file_is_plain_data_named_by_its_key(backbone, samples, tmp_path):
    cache = tmp_path / "cache"
    result = cached_features(backbone, samples, cache, progress=False)
    entry = torch.load(cache / f"{result.key}.pt", weights_only=True)
    fields = cache_key_fields(backbone, samples)
    assert entry["key_fields"] == fields and cache_key(fields) == result.key
    assert fields["backbone"]["weights_sha256"] == backbone.weights_sha256
    assert torch.equal(entry["features"], result.features)
    assert not list(cache.glob("*tmp*"))


def test_no_cache_dir_writes_nothing(backbone, samples, tmp_path, forward_calls):
    for _ in range(2):
        assert not cached_features(backbone, samples, None, progress=False).from_cache
    assert forward_calls["images"] == 10


def test_without_a_folder_nothing_is_cached_and_a_given_folder_is_used(backbone, samples, tmp_path,
                                                                     monkeypatch, forward_calls):
    monkeypatch.setenv("MECHANISM_CACHE_DIR", str(tmp_path / "env_cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for _ in range(2):
        assert not cached_features(backbone, samples, progress=False).from_cache
    assert forward_calls["images"] == 10
    assert not (tmp_path / "env_cache").exists() and not (tmp_path / "home").exists()
    result = cached_features(backbone, samples, tmp_path / "given", progress=False)
    assert (tmp_path / "given" / f"{result.key}.pt").is_file() and not (tmp_path / "env_cache").exists()
    assert cached_features(backbone, samples, tmp_path / "given", progress=False).from_cache


def test_unwritable_cache_warns_and_still_returns_features(backbone, samples, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    with pytest.warns(UserWarning, match="cannot write feature cache"):
        result = cached_features(backbone, samples, blocker, progress=False)
    assert result.features.shape == (5, 112, 4, 4) and not result.from_cache


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MECHANISM_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("MECHANISM_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "tailflow-mechanism" / "features"


def test_device_other_than_the_backbones_is_refused(backbone, samples):
    with pytest.raises(ValueError, match="lives on"):
        extract_features(backbone, samples, device="meta", progress=False)
