"""The frozen backbone, below training: pretrained classifier weights, offline and strictly
loaded (``weights``: the shipped Lite0 file, its key map, local files), the feature extractor
and its config (``model``), a checkpoint's record of it and the verified rebuild from that
record (``record``), and features of a sample list through the on-disk cache (``features``)."""
