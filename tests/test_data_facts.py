"""Data facts on a hand-made category whose mask areas are known exactly."""
import cv2
import numpy as np
import pytest

from mechanism.data.facts import data_facts


def test_facts_of_a_hand_made_category(tmp_path):
    cat = tmp_path / "rail"
    for folder in ("train/good", "test/good", "test/dent", "ground_truth/dent"):
        (cat / folder).mkdir(parents=True)
    image = np.zeros((20, 40, 3), np.uint8)                     # 40 wide, 20 high
    for i in range(3):
        cv2.imwrite(str(cat / "train/good" / f"{i}.png"), image)
    cv2.imwrite(str(cat / "test/good/0.png"), image)
    for i, (rows, cols) in enumerate([(10, 8), (20, 40)]):     # 10% and 100% of the image
        cv2.imwrite(str(cat / "test/dent" / f"{i}.png"), image)
        mask = np.zeros((20, 40), np.uint8)
        mask[:rows, :cols] = 255
        cv2.imwrite(str(cat / "ground_truth/dent" / f"{i}_mask.png"), mask)
    f = data_facts(tmp_path, "rail", 20, (4, 5))
    assert (f.n_train, f.n_test_good, f.n_test_defective) == (3, 1, 2)
    assert f.image_size == (20, 40) and f.same_size and f.cell_pixels == (5.0, 8.0)
    assert f.defect_pixel_share == pytest.approx((0.1 + 1.0 + 0.0) / 3)   # masks at 20×20
    assert f.median_defect_share == pytest.approx(0.55)
    assert f.masks_emptied == 0
    text = f.sentence()
    assert "images of 20×40 px, resized to 20×20 (aspect w/h 2.00 made 1.00)" in text
    assert "no defect mask loses all its pixels" in text and "5×8 original px" in text


def test_facts_at_an_input_that_keeps_the_aspect_and_masks_lost_to_the_resize(tmp_path):
    cat = tmp_path / "rail"
    for folder in ("train/good", "test/dent", "ground_truth/dent"):
        (cat / folder).mkdir(parents=True)
    image = np.zeros((20, 40, 3), np.uint8)
    cv2.imwrite(str(cat / "train/good/0.png"), image)
    regions = [(slice(0, 10), slice(0, 20)), (slice(5, 6), slice(5, 6)), (slice(0, 0), slice(0, 0))]
    for i, (rows, cols) in enumerate(regions):   # a quarter; one pixel the resize drops; none
        cv2.imwrite(str(cat / "test/dent" / f"{i}.png"), image)
        mask = np.zeros((20, 40), np.uint8)
        mask[rows, cols] = 255
        cv2.imwrite(str(cat / "ground_truth/dent" / f"{i}_mask.png"), mask)
    f = data_facts(tmp_path, "rail", (10, 20), (2, 4))
    assert f.input_shape == (10, 20) and f.cell_pixels == (10.0, 10.0)
    assert f.defect_pixel_share == pytest.approx(0.25 / 3)
    assert f.masks_emptied == 1          # the empty mask was empty before the resize
    text = f.sentence()
    assert "resized to 10×20, where" in text and "aspect" not in text
    assert "1 defect mask(s) lose all their pixels" in text
