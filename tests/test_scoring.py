"""Anomaly maps and image scores against analytic cases (constants, linear ramps, one hot patch)."""
import numpy as np
import pytest
import torch

from mechanism.errors import MechanismError
from mechanism.eval.scoring import (DEFAULT_IMAGE_SCORE, DEFAULT_MAP_SCORE, IMAGE_SCORE_METHODS,
                                    anomaly_maps, image_scores, top_area_k)
from mechanism.flow import PATCH_SCORES


def test_constant_patches_give_constant_map():
    maps = anomaly_maps(np.full((2, 14, 14), 3.7, dtype=np.float32))
    assert maps.shape == (2, 224, 224) and maps.dtype == np.float32
    np.testing.assert_allclose(maps, 3.7, rtol=1e-6)


@pytest.mark.parametrize("sigma, margin", [(0.0, 8), (4.0, 8 + 16)])
def test_linear_ramp_is_reproduced_in_the_interior(sigma, margin):
    # Patch (i, j) holds 2j − 0.5i. With align_corners=False output pixel x samples patch
    # coordinate (x + 0.5)/16 − 0.5, so bilinear interpolation reproduces the ramp exactly
    # wherever that coordinate lies in [0, 13] (8 <= x <= 215). A symmetric Gaussian leaves a
    # linear function unchanged where its whole window (radius 4σ = 16 px) stays inside.
    i, j = np.mgrid[0:14, 0:14]
    maps = anomaly_maps((2.0 * j - 0.5 * i)[None].astype(np.float32), sigma=sigma)
    src = (np.arange(224) + 0.5) / 16 - 0.5
    expected = 2.0 * src[None, :] - 0.5 * src[:, None]
    inner = slice(margin, 224 - margin)
    np.testing.assert_allclose(maps[0][inner, inner], expected[inner, inner], atol=1e-4)


def test_a_rectangular_grid_maps_onto_a_rectangle_with_its_own_scale_per_axis():
    # A 4×8 grid onto 64×256 px: 16 px per cell down, 32 across; the ramp 2j − 0.5i is
    # reproduced exactly where both sample coordinates lie inside the grid.
    i, j = np.mgrid[0:4, 0:8]
    maps = anomaly_maps((2.0 * j - 0.5 * i)[None].astype(np.float32), size=(64, 256), sigma=0.0)
    assert maps.shape == (1, 64, 256)
    rows, cols = (np.arange(64) + 0.5) / 16 - 0.5, (np.arange(256) + 0.5) / 32 - 0.5
    expected = 2.0 * cols[None, :] - 0.5 * rows[:, None]
    np.testing.assert_allclose(maps[0][8:56, 16:240], expected[8:56, 16:240], atol=1e-4)


@pytest.mark.parametrize("row, col", [(3, 9), (0, 0), (13, 5)])
def test_hot_patch_peaks_inside_its_footprint(row, col):
    patches = np.zeros((1, 14, 14), dtype=np.float32)
    patches[0, row, col] = 10.0
    y, x = np.unravel_index(np.argmax(anomaly_maps(patches)[0]), (224, 224))
    assert 16 * row <= y < 16 * (row + 1) and 16 * col <= x < 16 * (col + 1)


def test_blur_sigma_is_in_output_pixels():
    # Blurring adds σ² to the spread of a bump: the column profile of one hot patch must widen
    # by 4² = 16 px² (it would widen by 64² if σ were in patch units).
    patches = np.zeros((1, 14, 14), dtype=np.float32)
    patches[0, 7, 7] = 1.0

    def column_variance(sigma: float) -> float:
        profile = anomaly_maps(patches, sigma=sigma)[0].sum(axis=0).astype(np.float64)
        x = np.arange(224)
        mean = np.sum(x * profile) / profile.sum()
        return float(np.sum((x - mean) ** 2 * profile) / profile.sum())

    assert column_variance(4.0) - column_variance(0.0) == pytest.approx(16.0, abs=0.05)


def test_images_are_blurred_independently():
    patches = np.zeros((2, 14, 14), dtype=np.float32)
    patches[0, 7, 7] = 100.0
    maps = anomaly_maps(patches)
    assert np.all(maps[1] == 0.0) and maps[0].max() > 0


def test_torch_and_numpy_inputs_agree():
    patches = np.random.default_rng(0).normal(size=(3, 7, 7)).astype(np.float32)
    np.testing.assert_array_equal(anomaly_maps(torch.from_numpy(patches), size=56),
                                  anomaly_maps(patches, size=56))
    np.testing.assert_array_equal(image_scores(torch.from_numpy(patches), None, "top3_mean"),
                                  image_scores(patches, None, "top3_mean"))


def test_image_scores_of_known_arrays():
    patches = np.array([np.arange(9.0).reshape(3, 3),
                        [[5.0, 5.0, 5.0], [5.0, 1.0, 0.0], [0.0, 0.0, 0.0]],
                        [[-1.0, -2.0, -3.0], [-4.0, -5.0, -6.0], [-7.0, -8.0, -9.0]]])
    maps = np.zeros((3, 4, 4))
    maps[:, 1, 2] = [3.0, -1.0, 0.5]
    np.testing.assert_allclose(image_scores(patches, None, "top3_mean"), [7.0, 5.0, -2.0])
    np.testing.assert_allclose(image_scores(patches, None, "mean"), [4.0, 21 / 9, -5.0])
    np.testing.assert_allclose(image_scores(patches, maps, "max"), [3.0, 0.0, 0.5])
    assert IMAGE_SCORE_METHODS == ("top_area_mean", "top3_mean", "max", "mean")


@pytest.mark.parametrize("grid, k", [(14, 3), (28, 12), (7, 1), (4, 1), (56, 48)])
def test_top_area_mean_keeps_the_studys_area(grid, k):
    """3 of 196 patches of the study's 14×14 grid, the same image area on any grid."""
    assert top_area_k(grid * grid) == k
    rng = np.random.default_rng(grid)
    patches = rng.permutation(np.arange(2 * grid * grid, dtype=np.float64)).reshape(2, grid, grid)
    expected = [np.sort(p.ravel())[-k:].mean() for p in patches]  # independent: full sort
    np.testing.assert_allclose(image_scores(patches, None, "top_area_mean"), expected)
    if grid == 14:
        np.testing.assert_array_equal(image_scores(patches, None, "top_area_mean"),
                                      image_scores(patches, None, "top3_mean"))


def test_cli_choices_match_the_library():
    """cli/options.py spells the choices out (so --help stays light); they must be the library's."""
    from cli.options import scoring_options

    @scoring_options
    def command(**_):
        pass
    params = {p.name: p for p in command.__click_params__}
    assert tuple(params["image_score"].type.choices) == IMAGE_SCORE_METHODS
    assert params["image_score"].default == DEFAULT_IMAGE_SCORE
    assert set(params["map_score"].type.choices) == set(PATCH_SCORES)
    assert params["map_score"].default == DEFAULT_MAP_SCORE


def test_non_finite_input_raises_and_counts():
    patches = np.zeros((2, 4, 4), dtype=np.float32)
    patches[0, 1, 1] = np.nan
    patches[1, 2, 3] = np.inf
    with pytest.raises(MechanismError, match="2 of 32 values are not finite"):
        anomaly_maps(patches)
    for method in IMAGE_SCORE_METHODS:
        with pytest.raises(MechanismError, match="not finite"):
            image_scores(patches, np.zeros((2, 8, 8)), method)
    bad_maps = np.zeros((2, 8, 8))
    bad_maps[1, 0, 0] = np.nan
    with pytest.raises(MechanismError, match="anomaly maps: 1 of 128"):
        image_scores(np.zeros((2, 4, 4)), bad_maps, "max")


@pytest.mark.parametrize("call, message", [
    (lambda: image_scores(np.zeros((1, 4, 4)), None, "median"), "unknown image score method"),
    (lambda: image_scores(np.zeros((1, 4, 4)), None, "max"), "needs the anomaly maps"),
    (lambda: image_scores(np.zeros((2, 4, 4)), np.zeros((3, 8, 8)), "max"), "do not match"),
    (lambda: image_scores(np.zeros((1, 1, 2)), None, "top3_mean"), "at least 3 patches"),
    (lambda: anomaly_maps(np.zeros((4, 4))), r"shape \(N, H, W\)"),
    (lambda: anomaly_maps(np.zeros((1, 4, 4), dtype=int)), "floating point"),
    (lambda: anomaly_maps(np.zeros((1, 4, 4)), size=0), "size"),
    (lambda: anomaly_maps(np.zeros((1, 4, 4)), size=(8, 0)), "size"),
    (lambda: anomaly_maps(np.zeros((1, 4, 4)), sigma=-1.0), "sigma"),
])
def test_bad_arguments_raise(call, message):
    with pytest.raises(MechanismError, match=message):
        call()
