"""The demo data generator: layout, determinism, pixel-exact masks, safe output."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mechanism.data.demo import (DEFECT_TYPES, DEMO_CATEGORIES, defect_counts, fractal_noise,
                                 generate, generate_demo, perlin_noise, render_sample)
from mechanism.data.images import load_image, load_mask
from mechanism.data.mvtec import fingerprint, read_split
from mechanism.errors import MechanismError

SMALL = dict(n_train=6, n_test_good=2, n_test_defect=4, size=128)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "set"
    generate_demo(out, seed=0, **SMALL)
    return out


def test_layout_reads_back_with_the_mvtec_reader(small_set):
    for cat in DEMO_CATEGORIES:
        train = read_split(small_set, cat, "train")
        test = read_split(small_set, cat, "test")
        assert [s.path.name for s in train] == [f"{i:03d}.png" for i in range(6)]
        assert all(s.label == 0 and s.defect == "good" for s in train)
        by_defect = {d: [s for s in test if s.defect == d] for d in ("good", *DEFECT_TYPES)}
        assert {d: len(v) for d, v in by_defect.items()} == {"good": 2, **{d: 1 for d in DEFECT_TYPES}}
        for s in test:
            assert load_image(s.path, 128).shape == (3, 128, 128)
            if s.label:
                assert s.mask_path == small_set / cat / "ground_truth" / s.defect / "000_mask.png"


def test_summary_matches_the_files(tmp_path):
    summary = generate_demo(tmp_path / "d", seed=3, categories=("gravel",), n_train=2,
                            n_test_good=1, n_test_defect=6, size=64)
    assert summary.path == tmp_path / "d" and summary.train == {"gravel": 2}
    assert summary.test == {"gravel": {"good": 1, "foreign": 2, "scratch": 2, "hole": 1, "color": 1}}
    on_disk = {d.name: len(list(d.glob("*.png"))) for d in (tmp_path / "d" / "gravel" / "test").iterdir()}
    assert on_disk == summary.test["gravel"]
    assert summary.to_dict()["test"]["gravel"]["scratch"] == 2


def test_images_are_rgb_and_masks_binary_nonempty_and_image_sized(small_set):
    for cat in DEMO_CATEGORIES:
        for s in read_split(small_set, cat, "test"):
            img = cv2.imread(str(s.path), cv2.IMREAD_UNCHANGED)
            assert img.shape == (128, 128, 3) and img.dtype == np.uint8
            if s.mask_path is None:
                continue
            mask = cv2.imread(str(s.mask_path), cv2.IMREAD_UNCHANGED)
            assert mask.shape == (128, 128) and mask.dtype == np.uint8
            assert set(np.unique(mask)) == {0, 255}


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path, small_set):
    again = tmp_path / "again"
    generate_demo(again, seed=0, **SMALL)
    assert _files(again) == _files(small_set)
    other = tmp_path / "other"
    generate_demo(other, seed=1, **SMALL)
    a, b = read_split(small_set, "brick", "test"), read_split(other, "brick", "test")
    assert fingerprint(a) != fingerprint(b)
    assert all(x.path.read_bytes() != y.path.read_bytes() for x, y in zip(a, b))


def test_an_image_depends_only_on_its_key_not_on_counts_or_categories(tmp_path, small_set):
    sub = tmp_path / "sub"
    generate_demo(sub, seed=0, categories=("grass",), n_train=3, n_test_good=1, n_test_defect=1,
                  size=128)
    for rel, data in _files(sub).items():
        assert (small_set / rel).read_bytes() == data, rel


@pytest.mark.parametrize("category", DEMO_CATEGORIES)
@pytest.mark.parametrize("defect", DEFECT_TYPES)
def test_pixels_change_inside_the_mask_and_only_within_a_soft_edge(category, defect):
    ring3 = np.ones((7, 7), np.uint8)            # dilation by 3 px (the soft edge's reach)
    ring2 = np.ones((5, 5), np.uint8)
    for index in range(5):
        s = render_sample(category, "test", defect, index, seed=0, size=128)
        mask = s.mask
        assert mask.any() and mask.dtype == bool and mask.shape == (128, 128)
        change = np.abs(s.image.astype(np.int16) - s.clean.astype(np.int16)).sum(axis=-1)
        near3 = cv2.dilate(mask.astype(np.uint8), ring3) > 0
        near2 = cv2.dilate(mask.astype(np.uint8), ring2) > 0
        assert not change[~near3].any(), "pixels changed more than 3 px away from the mask"
        assert change[near2].sum() >= 0.95 * change.sum()
        assert change[mask].mean() >= 6.0       # summed over RGB, grey levels
        assert np.mean(change[mask] > 0) >= 0.8   # most mask pixels really changed


def test_good_samples_are_unchanged_and_have_empty_masks():
    for split in ("train", "test"):
        s = render_sample("brick", split, "good", 0, seed=0, size=64)
        assert np.array_equal(s.image, s.clean) and not s.mask.any()
        assert s.image.shape == (64, 64, 3) and s.image.dtype == np.uint8


def test_brick_keeps_its_orientation_while_grass_may_turn():
    # Brick joints run mostly vertically in the photo: vertical gradients stay weaker than
    # horizontal ones in every crop because brick is only ever flipped, never turned by 90°.
    def orientation(img: np.ndarray) -> float:
        g = img.mean(axis=-1)
        return np.abs(np.diff(g, axis=1)).mean() / np.abs(np.diff(g, axis=0)).mean()
    assert all(orientation(render_sample("brick", "train", "good", i, 0, 128).image) > 1.0
               for i in range(12))


def test_perlin_noise_is_zero_on_the_lattice_and_bounded():
    rng = np.random.default_rng(0)
    n = perlin_noise((64, 96), 4, rng)
    assert n.shape == (64, 96) and n.dtype == np.float32
    np.testing.assert_allclose(n[::16, ::24], 0.0, atol=1e-6)   # lattice points: 64/4, 96/4
    assert np.abs(n).max() <= 1.0 and n.std() > 0.1
    np.testing.assert_array_equal(n, perlin_noise((64, 96), 4, np.random.default_rng(0)))
    f = fractal_noise((64, 64), 2, 3, rng)
    assert np.abs(f).max() <= 1.0 and f.std() > 0.05


def test_perlin_noise_is_smooth():
    n = perlin_noise((256, 256), 4, np.random.default_rng(1))
    # 4 cells over 256 px: one pixel is 1/64 of a cell, so neighbours differ by a few hundredths
    assert np.abs(np.diff(n, axis=0)).max() < 0.1 and np.abs(np.diff(n, axis=1)).max() < 0.1


def test_defect_counts_split_round_robin():
    assert defect_counts(60) == {d: 15 for d in DEFECT_TYPES}
    assert defect_counts(6) == {"foreign": 2, "scratch": 2, "hole": 1, "color": 1}
    assert defect_counts(1) == {"foreign": 1}


def test_refuses_a_non_empty_output_without_overwrite(tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(MechanismError, match="not empty"):
        generate_demo(out, **SMALL)
    assert (out / "keep.txt").read_text() == "x"
    generate_demo(out, categories=("brick",), n_train=1, n_test_good=1, n_test_defect=1, size=32,
                  overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "brick" / "train" / "good" / "000.png").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]      # no temporary siblings left


def test_an_empty_existing_folder_is_filled(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    generate_demo(out, categories=("grass",), n_train=1, n_test_good=1, n_test_defect=1, size=32)
    assert len(read_split(out, "grass", "train")) == 1


def test_an_interrupted_run_leaves_the_old_output_untouched(tmp_path, monkeypatch):
    out = tmp_path / "d"
    out.mkdir()
    (out / "old.txt").write_text("old")
    calls = []

    def failing(*args, **kwargs):
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return render_sample(*args, **kwargs)

    monkeypatch.setattr(generate, "render_sample", failing)
    with pytest.raises(KeyboardInterrupt):
        generate_demo(out, categories=("brick",), n_train=4, n_test_good=1, n_test_defect=1,
                      size=32, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_output_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(MechanismError, match="is a file"):
        generate_demo(f, overwrite=True, **SMALL)


@pytest.mark.parametrize("kwargs, message", [
    (dict(categories=("brick", "carpet")), "unknown demo category 'carpet'"),
    (dict(categories=()), "no demo category"),
    (dict(categories="brick"), "sequence of names"),
    (dict(categories=("grass", "grass")), "repeat"),
    (dict(n_train=0), "n_train must be a positive integer"),
    (dict(n_test_good=-1), "n_test_good"),
    (dict(n_test_defect=0), "n_test_defect"),
    (dict(size=16), "at least 32"),
    (dict(seed=-1), "seed"),
])
def test_bad_arguments_are_refused_before_writing(tmp_path, kwargs, message):
    with pytest.raises(MechanismError, match=message):
        generate_demo(tmp_path / "d", **kwargs)
    assert not (tmp_path / "d").exists()


def test_render_sample_refuses_unknown_keys():
    with pytest.raises(MechanismError):
        render_sample("carpet", "train", "good", 0, 0, 64)
    with pytest.raises(MechanismError):
        render_sample("brick", "train", "hole", 0, 0, 64)
    with pytest.raises(MechanismError):
        render_sample("brick", "test", "dent", 0, 0, 64)
    with pytest.raises(MechanismError):
        render_sample("brick", "val", "good", 0, 0, 64)


def test_masks_read_back_equal_the_rendered_ones(small_set):
    for cat in DEMO_CATEGORIES:
        for s in read_split(small_set, cat, "test"):
            if s.label:
                rendered = render_sample(cat, "test", s.defect, 0, seed=0, size=128)
                np.testing.assert_array_equal(load_mask(s.mask_path, 128), rendered.mask)
                np.testing.assert_array_equal(
                    cv2.cvtColor(cv2.imread(str(s.path)), cv2.COLOR_BGR2RGB), rendered.image)


def test_every_defect_renders_with_a_mask_at_the_smallest_size():
    for defect in DEFECT_TYPES:
        for index in range(10):
            assert render_sample("gravel", "test", defect, index, seed=2, size=32).mask.any()
