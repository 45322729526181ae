"""Evaluation of a trained checkpoint: the detector (``detector``: backbone + flow, features
through the cache), anomaly maps and image scores (``scoring``), the task metrics of SPEC §3
(``metrics/``), a test-split evaluation (``evaluate``) and the baseline → tail-aware observed
effect with paired intervals (``observed_effect``)."""
