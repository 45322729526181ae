"""Data: the MVTec AD layout reader, image preprocessing and the embedded demo set."""
from mechanism.data.mvtec import Sample, Split, discover_categories, read_split
from mechanism.data.images import load_image, load_mask, INPUT_POLICY

__all__ = ["Sample", "Split", "discover_categories", "read_split", "load_image", "load_mask",
           "INPUT_POLICY"]
