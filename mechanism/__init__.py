"""tailflow-mechanism: tail-aware normalizing-flow anomaly detectors and the analyses that explain them.

The subpackages follow the data flow (README, "Layout"): ``io`` and ``stats`` below everything,
then ``data`` → ``backbone`` → ``flow`` → ``train`` → ``eval`` → ``analyzers`` → ``sweep`` →
``report`` → ``figures`` → ``pipelines``; the click application in ``cli/`` sits on top.

A notebook::

    from mechanism import HYPOTHESES, analyze, default_cache_dir, tables
    results = analyze("runs/brick/model.pt", HYPOTHESES, "analysis_results/mechanism", "cpu",
                      cache_dir=default_cache_dir())
    print(tables.markdown(results["H3"]))

The names below are imported on first use, so that ``import mechanism.errors`` (the CLI's
``--help``) does not load torch.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "HYPOTHESES": "mechanism.analyzers.registry",
    "default_cache_dir": "mechanism.backbone.features",
    "BackboneConfig": "mechanism.backbone.model",
    "load_backbone": "mechanism.backbone.model",
    "generate_demo": "mechanism.data.demo",
    "MechanismError": "mechanism.errors",
    "Detector": "mechanism.eval.detector",
    "load_detector": "mechanism.eval.detector",
    "Evaluation": "mechanism.eval.evaluate",
    "evaluate_detector": "mechanism.eval.evaluate",
    "FlowConfig": "mechanism.flow",
    "FlowOutput": "mechanism.flow",
    "PatchFlow": "mechanism.flow",
    "patch_nll": "mechanism.flow",
    "AnalysisSettings": "mechanism.pipelines.analyze",
    "analyze": "mechanism.pipelines.analyze",
    "tables": "mechanism.report.tables",
    "Checkpoint": "mechanism.train.checkpoint",
    "load_checkpoint": "mechanism.train.checkpoint",
    "save_checkpoint": "mechanism.train.checkpoint",
    "TrainConfig": "mechanism.train.config",
    "fit_flow": "mechanism.train.fit",
    "train_detector": "mechanism.train.fit",
    "TailLossConfig": "mechanism.train.loss",
    "tail_aware_loss": "mechanism.train.loss",
    "tail_k": "mechanism.train.loss",
}
"""Public name → the module that defines it."""
_MODULES = {"tables"}
"""Public names that are modules themselves (``tables`` is ``mechanism.report.tables``)."""
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mechanism' has no attribute {name!r}")
    module = importlib.import_module(_EXPORTS[name])
    value = module if name in _MODULES else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
