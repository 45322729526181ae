"""Data: the MVTec AD layout reader, image preprocessing and the embedded demo set."""
from mechanism.data.images import INPUT_POLICY, load_image, load_mask
from mechanism.data.mvtec import Sample, Split, discover_categories, read_split

__all__ = ["Sample", "Split", "discover_categories", "read_split", "load_image", "load_mask",
           "INPUT_POLICY"]
