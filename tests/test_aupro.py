"""AUPRO against a brute-force reference, hand-worked curves and the definition's edge cases."""
import numpy as np
import pytest
from scipy import ndimage
from skimage.measure import label as skimage_label

from mechanism.errors import MechanismError
from mechanism.eval.metrics import aupro, pro_curve


def brute_force_aupro(maps: np.ndarray, masks: np.ndarray, fpr_limit: float) -> float:
    """Direct definition: one threshold per distinct score, predicted = score >= threshold."""
    masks = masks.astype(bool)
    regions = []  # boolean (N, H, W) mask of every 8-connected region, scikit-image labelling
    for i, image_mask in enumerate(masks):
        ids = skimage_label(image_mask, connectivity=2)
        for region_id in range(1, ids.max() + 1):
            region = np.zeros_like(masks)
            region[i] = ids == region_id
            regions.append(region)
    normal = ~masks
    points = [(0.0, 0.0)]
    for threshold in np.unique(maps)[::-1]:
        predicted = maps >= threshold
        fpr = (predicted & normal).sum() / normal.sum()
        pro = np.mean([(predicted & r).sum() / r.sum() for r in regions])
        points.append((fpr, pro))
    area = 0.0  # each segment clipped to [0, fpr_limit]
    for (x0, y0), (x1, y1) in zip(points[:-1], points[1:]):
        if x0 >= fpr_limit:
            break
        if x1 > fpr_limit:
            y1 = y0 + (y1 - y0) * (fpr_limit - x0) / (x1 - x0)
            x1 = fpr_limit
        area += (x1 - x0) * (y0 + y1) / 2
    return area / fpr_limit


def random_case(seed: int, quantised: bool) -> tuple[np.ndarray, np.ndarray]:
    """Three 12×12 images: blobby masks (one image all normal), scores correlated with them."""
    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.normal(size=(3, 12, 12)), sigma=(0, 1.2, 1.2))
    masks = (noise > np.quantile(noise, 0.8)).astype(np.uint8)
    masks[0] = 0
    maps = masks + rng.normal(scale=0.8, size=masks.shape)
    if quantised:
        maps = np.round(maps * 2) / 2  # few distinct values: many ties across both classes
    return maps, masks


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("quantised", [False, True])
@pytest.mark.parametrize("fpr_limit", [0.05, 0.3, 1.0])
def test_matches_brute_force(seed, quantised, fpr_limit):
    maps, masks = random_case(seed, quantised)
    assert masks.any() and not masks.all()
    assert aupro(maps, masks, fpr_limit) == pytest.approx(
        brute_force_aupro(maps, masks, fpr_limit), abs=1e-9)


def test_perfect_separation_scores_one():
    maps, masks = random_case(0, quantised=False)
    perfect = masks + 0.1 * np.random.default_rng(1).random(masks.shape)
    assert aupro(perfect, masks) == pytest.approx(1.0, abs=1e-12)


def hand_case() -> tuple[np.ndarray, np.ndarray]:
    """One 4×4 image: region A = 1 pixel (score 1), region B = 3 pixels (score 0);
    12 normal pixels, 3 of them at score 0.5 and 9 at 0."""
    masks = np.zeros((1, 4, 4), dtype=np.uint8)
    masks[0, 0, 0] = 1  # A
    masks[0, 3, 1:] = 1  # B
    maps = np.zeros((1, 4, 4))
    maps[0, 0, 0] = 1.0
    maps[0, 1, 1:] = 0.5
    return maps, masks


def test_hand_worked_curve_weights_regions_not_pixels():
    # t = 1:   A found, B not, no false positive     -> FPR 0,       PRO (1 + 0)/2 = 0.5
    #          (pixel-wise recall would be 1/4: PRO averages regions, not pixels)
    # t = 0.5: 3 of 12 normal pixels join          -> FPR 0.25,    PRO 0.5
    # t = 0:   everything                          -> FPR 1,       PRO 1
    fpr, pro = pro_curve(*hand_case())
    np.testing.assert_allclose(fpr, [0.0, 0.0, 0.25, 1.0], atol=1e-15)
    np.testing.assert_allclose(pro, [0.0, 0.5, 0.5, 1.0], atol=1e-15)


def test_hand_worked_aupro():
    # Area on [0, 0.25]: 0.25 · 0.5 = 1/8. On [0.25, 0.3] PRO rises linearly from 0.5 towards 1
    # at FPR 1, so PRO(0.3) = 0.5 + 0.5 · 0.05/0.75 = 8/15 and the strip is
    # 0.05 · (1/2 + 8/15)/2 = 31/1200. Total 181/1200; divided by 0.3 → 181/360.
    assert aupro(*hand_case(), fpr_limit=0.3) == pytest.approx(181 / 360, abs=1e-12)
    # Up to FPR 0.25 exactly (a curve point, no interpolation): (1/8) / 0.25 = 0.5.
    assert aupro(*hand_case(), fpr_limit=0.25) == pytest.approx(0.5, abs=1e-12)


def test_all_equal_scores_jump_from_origin_to_one():
    # One threshold: the curve is (0, 0) → (1, 1), so PRO = FPR; area to 0.3 is 0.3²/2 = 0.045,
    # divided by 0.3 → 0.15.
    _, masks = random_case(2, quantised=False)
    flat = np.full(masks.shape, 7.0)
    fpr, pro = pro_curve(flat, masks)
    np.testing.assert_allclose(fpr, [0.0, 1.0])
    np.testing.assert_allclose(pro, [0.0, 1.0])
    assert aupro(flat, masks, 0.3) == pytest.approx(0.15, abs=1e-12)


def test_diagonal_neighbours_form_one_region():
    # Mask pixels (0,0) and (1,1) touch diagonally: ONE region of 2 pixels; (3,3) is a second
    # region. Only (0,0) scores high, so PRO = (1/2 + 0)/2 = 0.25 with 8-connectivity
    # (4-connectivity would give three regions and PRO = 1/3).
    masks = np.zeros((1, 4, 4), dtype=bool)
    masks[0, 0, 0] = masks[0, 1, 1] = masks[0, 3, 3] = True
    maps = np.zeros((1, 4, 4))
    maps[0, 0, 0] = 1.0
    fpr, pro = pro_curve(maps, masks)
    assert (fpr[1], pro[1]) == (0.0, pytest.approx(0.25, abs=1e-15))


def test_regions_and_normal_pixels_pool_across_images():
    # Image 0 holds one region fully found, image 1 one region missed; image 1's normal pixels
    # are the only false positives. If regions were averaged per image first or FPR taken per
    # image, these numbers would differ.
    masks = np.zeros((2, 3, 3), dtype=bool)
    masks[0, 0, 0] = masks[1, 2, 2] = True
    maps = np.zeros((2, 3, 3))
    maps[0, 0, 0] = 2.0
    maps[1, :2, :] = 1.0  # 6 of the 16 normal pixels
    fpr, pro = pro_curve(maps, masks)
    np.testing.assert_allclose(fpr, [0.0, 0.0, 6 / 16, 1.0])
    np.testing.assert_allclose(pro, [0.0, 0.5, 0.5, 1.0])


def test_invariant_to_monotone_rescaling():
    maps, masks = random_case(3, quantised=True)
    assert aupro(np.exp(3 * maps) + 5, masks) == pytest.approx(aupro(maps, masks), abs=1e-12)


@pytest.mark.parametrize("change, message", [
    (lambda maps, masks: (maps, np.zeros_like(masks)), "no anomalous region"),
    (lambda maps, masks: (maps, np.ones_like(masks)), "no normal pixel"),
    (lambda maps, masks: (np.where(masks > 0, np.nan, maps), masks), "not finite"),
    (lambda maps, masks: (maps[:, :-1], masks), "shape"),
    (lambda maps, masks: (maps, masks * 255), "binary"),
])
def test_bad_inputs_raise(change, message):
    maps, masks = random_case(0, quantised=False)
    with pytest.raises(MechanismError, match=message):
        aupro(*change(maps, masks))


@pytest.mark.parametrize("fpr_limit", [0.0, -0.1, 1.5, float("nan")])
def test_fpr_limit_outside_unit_interval_raises(fpr_limit):
    with pytest.raises(MechanismError, match="fpr_limit"):
        aupro(*random_case(0, quantised=False), fpr_limit=fpr_limit)
