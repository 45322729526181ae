"""Augmented views: exact grid correspondence, determinism, valid intensities."""
import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mechanism.data.augment import (AugmentConfig, View, apply_views, draw_view,
                                    maps_to_original_grid)
from mechanism.errors import MechanismError

CELL = 8  # pixels per grid cell of the toy "patch model" below


def cell_max(images: torch.Tensor) -> torch.Tensor:
    """A flip-equivariant map (B, 3, S, S) → (B, S/CELL, S/CELL): max over each cell's pixels."""
    return F.max_pool2d(images, CELL).amax(dim=1)


def images(n: int = 6, size: int = 32) -> torch.Tensor:
    return torch.rand((n, 3, size, size), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("flip_h,flip_v", [(False, False), (True, False), (False, True), (True, True)])
def test_map_of_a_flipped_image_maps_back_exactly(flip_h, flip_v):
    x = images()
    view = View(flip_h, flip_v, gain=1.0, bias=0.0, noise_std=0.0, noise_seed=0)
    views = [view] * len(x)
    back = maps_to_original_grid(cell_max(apply_views(x, views)), views)
    assert torch.equal(back, cell_max(x))


def test_flips_move_pixels_to_their_mirror_position():
    x = images(1)[0]
    out = View(True, True, 1.0, 0.0, 0.0, 0).apply(x)
    s = x.shape[-1]
    for c, i, j in [(0, 0, 0), (1, 3, 17), (2, 31, 5)]:
        assert out[c, s - 1 - i, s - 1 - j] == x[c, i, j]


def test_photometric_jitter_is_undone_on_the_grid_only_by_flips():
    """With jitter, the mapped-back map equals the map of the same view without flips."""
    x = images()
    cfg = AugmentConfig(flip_prob=0.5, max_contrast=0.2, max_brightness=0.1, noise_std=0.05)
    views = [draw_view(cfg, 7, 1, i) for i in range(len(x))]
    unflipped = [dataclasses.replace(v, flip_h=False, flip_v=False) for v in views]
    back = maps_to_original_grid(cell_max(apply_views(x, views)), views)
    assert torch.equal(back, cell_max(apply_views(x, unflipped)))
    assert not torch.equal(back, cell_max(x))


def test_photometric_formula():
    x = images(1)[0]
    out = View(False, False, gain=1.2, bias=-0.05, noise_std=0.0, noise_seed=0).apply(x)
    expected = np.clip(1.2 * (x.numpy() - x.numpy().mean()) + x.numpy().mean() - 0.05, 0, 1)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-6)


def test_seeded_views_are_reproducible_and_independent_of_batching():
    x = images(8)
    cfg = AugmentConfig()
    views = [draw_view(cfg, 3, 2, i) for i in range(8)]
    assert views == [draw_view(cfg, 3, 2, i) for i in range(8)]
    whole = apply_views(x, views)
    assert torch.equal(whole, apply_views(x, views))
    assert torch.equal(whole[5:], apply_views(x[5:], views[5:]))
    assert draw_view(cfg, 3, 2, 0) != draw_view(cfg, 3, 1, 0) != draw_view(cfg, 4, 2, 0)


def test_flip_frequencies_follow_the_probability():
    draws = [draw_view(AugmentConfig(flip_prob=0.5), 0, 1, i) for i in range(2000)]
    share_h = np.mean([v.flip_h for v in draws])
    share_v = np.mean([v.flip_v for v in draws])
    assert abs(share_h - 0.5) < 0.05 and abs(share_v - 0.5) < 0.05
    never = [draw_view(AugmentConfig(flip_prob=0.0), 0, 1, i) for i in range(100)]
    assert not any(v.flip_h or v.flip_v for v in never)
    gains = np.array([v.gain for v in draws])
    assert gains.min() >= 0.9 and gains.max() <= 1.1


def test_values_stay_in_unit_interval():
    x = torch.cat([torch.zeros(1, 3, 16, 16), torch.ones(1, 3, 16, 16), images(2, 16)])
    for bias in (-0.9, 0.9):
        view = View(True, False, gain=1.5, bias=bias, noise_std=0.3, noise_seed=1)
        out = apply_views(x, [view] * len(x))
        assert out.min() >= 0.0 and out.max() <= 1.0


def test_bad_arguments():
    with pytest.raises(MechanismError):
        AugmentConfig(flip_prob=1.5)
    with pytest.raises(MechanismError):
        AugmentConfig(noise_std=-1.0)
    with pytest.raises(MechanismError):
        draw_view(AugmentConfig(), -1, 0, 0)
    with pytest.raises(ValueError):
        apply_views(images(2), [View(False, False, 1.0, 0.0, 0.0, 0)])
