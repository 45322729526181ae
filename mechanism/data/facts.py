"""What a reader needs to know about a category's data to judge its metrics: how many images,
their size, how much of the test set is defective pixel by pixel (the Pixel AP a random map
gets), and how large a grid cell is in the original photograph."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mechanism.data.images import as_shape, image_shape, load_mask
from mechanism.data.mvtec import read_split


@dataclass(frozen=True)
class DataFacts:
    """One category's data as the models see it."""
    category: str
    n_train: int
    n_test_good: int
    n_test_defective: int
    image_size: tuple[int, int]      # (height, width) in pixels, the most common test image size
    same_size: bool                  # every test image has ``image_size``
    input_shape: tuple[int, int]     # (S_h, S_w): images and masks are resized to it
    grid: tuple[int, int]            # (H, W) patch grid
    defect_pixel_share: float        # defective pixels / all test pixels at the input shape: a
                                     # random map's expected Pixel AP (the chance level)
    median_defect_share: float | None  # median over defective test images of their mask's share
    masks_emptied: int               # defective images whose mask marks pixels at its own size but
                                     # none at the input shape (nearest-neighbour resize): defects
                                     # the pixel metrics cannot see

    @property
    def cell_pixels(self) -> tuple[float, float]:
        """One grid cell in original pixels, (height, width)."""
        return self.image_size[0] / self.grid[0], self.image_size[1] / self.grid[1]

    def sentence(self) -> str:
        """The facts in one line."""
        h, w = self.image_size
        ch, cw = self.cell_pixels
        sh, sw = self.input_shape
        median = "—" if self.median_defect_share is None else f"{self.median_defect_share:.2%}"
        aspect = "" if abs(w / h - sw / sh) < 0.01 * w / h else f" (aspect w/h {w / h:.2f} made {sw / sh:.2f})"
        lost = ("no defect mask loses all its pixels" if not self.masks_emptied else
                f"{self.masks_emptied} defect mask(s) lose all their pixels (those defects are "
                "invisible to the pixel metrics)")
        return (f"{self.n_train} training images, {self.n_test_good} good + {self.n_test_defective} "
                f"defective test images of {h}×{w} px{'' if self.same_size else ' (the most common size)'}, "
                f"resized to {sh}×{sw}{aspect}, where maps and masks are compared ({lost}); a "
                f"{self.grid[0]}×{self.grid[1]} grid cell covers {ch:.0f}×{cw:.0f} original px; "
                f"the median defect covers {median} of its image; defective pixels are "
                f"{self.defect_pixel_share:.2%} of all test pixels (the Pixel AP a random map "
                f"gets: the chance level); sizes are height×width")


def data_facts(data_root: str | Path, category: str, input_size: int | tuple[int, int],
               grid: tuple[int, int]) -> DataFacts:
    """``DataFacts`` of ``category`` under ``data_root``, masks compared at ``input_size`` (one
    side or ``(height, width)``, as the evaluation compares them).

    Raises:
        MechanismError: unreadable data or masks (as ``read_split`` and ``load_mask``).
    """
    train = read_split(data_root, category, "train")
    test = read_split(data_root, category, "test")
    sizes = Counter(image_shape(s.path) for s in test)
    shape = as_shape(input_size)
    shares = [float(load_mask(s.mask_path, shape, s.path).mean()) for s in test]
    defective = [share for s, share in zip(test, shares) if s.label == 1]
    emptied = sum(share == 0 and load_mask(s.mask_path, image_shape(s.path)).any()
                  for s, share in zip(test, shares) if s.label == 1)
    return DataFacts(category, len(train), len(test) - len(defective), len(defective),
                     sizes.most_common(1)[0][0], len(sizes) == 1, shape, tuple(grid),
                     float(np.mean(shares)), float(np.median(defective)) if defective else None,
                     emptied)
