"""tailflow-mechanism: tail-aware normalizing-flow anomaly detectors and the analyses that explain them.

The subpackages follow the data flow (README, "Layout"): ``io`` and ``stats`` below everything,
then ``data`` → ``backbone`` → ``flow`` → ``train`` → ``eval`` → ``analyzers`` → ``sweep`` →
``report`` → ``figures`` → ``pipelines``; the click application in ``cli/`` sits on top.

A notebook::

    from mechanism import HYPOTHESES, analyze, default_cache_dir, tables
    results = analyze("runs/brick/model.pt", HYPOTHESES, "analysis_results/mechanism", "cpu",
                      cache_dir=default_cache_dir())
    print(tables.markdown(results["H3"]))
"""
from mechanism.analyzers.registry import HYPOTHESES
from mechanism.backbone.features import default_cache_dir
from mechanism.backbone.model import BackboneConfig, load_backbone
from mechanism.data.demo import generate_demo
from mechanism.errors import MechanismError
from mechanism.eval.detector import Detector, load_detector
from mechanism.eval.evaluate import Evaluation, evaluate_detector
from mechanism.flow import FlowConfig, FlowOutput, PatchFlow, patch_nll
from mechanism.pipelines.analyze import AnalysisSettings, analyze
from mechanism.report import tables
from mechanism.train.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from mechanism.train.config import TrainConfig
from mechanism.train.fit import fit_flow, train_detector
from mechanism.train.loss import TailLossConfig, tail_aware_loss, tail_k

__all__ = [
    "HYPOTHESES", "AnalysisSettings", "analyze", "tables", "default_cache_dir",
    "BackboneConfig", "load_backbone", "Checkpoint", "load_checkpoint", "save_checkpoint",
    "generate_demo", "Detector", "load_detector", "MechanismError", "Evaluation",
    "evaluate_detector", "FlowConfig", "FlowOutput", "PatchFlow", "patch_nll", "TailLossConfig",
    "tail_aware_loss", "tail_k", "fit_flow", "train_detector", "TrainConfig",
]
