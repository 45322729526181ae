"""The embedded demo data set: real texture photographs with synthetic defects, in MVTec AD layout.

Sources: scikit-image's grey 512×512 photographs ``data.brick()``, ``data.grass()`` and
``data.gravel()``, one category each (``DEMO_CATEGORIES``). Modules:

* ``noise``: Perlin and fractal noise, and the source photographs (crop, per-category tint);
* ``defects``: the synthetic defect types (``DEFECT_TYPES``) and their masks;
* ``generate``: normal images, ``render_sample`` (one image from its key) and ``generate_demo``
  (the whole data set, with its ``DemoSummary``).

Every image depends only on its key ``(seed, category, split, defect, index)``.
"""
from mechanism.data.demo.defects import DEFECT_TYPES, MASK_THRESHOLD
from mechanism.data.demo.generate import (DemoSample, DemoSummary, defect_counts, generate_demo,
                                          render_sample)
from mechanism.data.demo.noise import CROP_SIDE, DEMO_CATEGORIES, TINTS, fractal_noise, perlin_noise

__all__ = ["CROP_SIDE", "DEFECT_TYPES", "DEMO_CATEGORIES", "MASK_THRESHOLD", "TINTS", "DemoSample",
           "DemoSummary", "defect_counts", "fractal_noise", "generate_demo", "perlin_noise",
           "render_sample"]
