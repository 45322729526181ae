"""Task metrics (SPEC §3): image AUROC, pooled pixel AUROC / AP, and AUPRO."""
from mechanism.eval.metrics.aupro import aupro, pro_curve
from mechanism.eval.metrics.detection import (DetectionMetrics, detection_metrics, image_auroc,
                                              pixel_ap, pixel_auroc)

__all__ = ["aupro", "pro_curve", "DetectionMetrics", "detection_metrics", "image_auroc",
           "pixel_ap", "pixel_auroc"]
