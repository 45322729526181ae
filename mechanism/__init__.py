"""tailflow-mechanism: tail-aware normalizing-flow anomaly detectors and the analyses that explain them.

A notebook needs three lines::

    from mechanism import analyze, HYPOTHESES
    results = analyze("runs/brick/model.pt", HYPOTHESES, "analysis_results/mechanism", "cpu")
    print(results["H3"].markdown())
"""
from mechanism.pipelines.analyze import HYPOTHESES, AnalysisSettings, analyze
from mechanism.backbone.model import BackboneConfig, load_backbone
from mechanism.train.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from mechanism.data.demo import generate_demo
from mechanism.eval.detector import Detector, load_detector
from mechanism.errors import MechanismError
from mechanism.eval.evaluate import Evaluation, evaluate_detector
from mechanism.flow import FlowConfig, FlowOutput, PatchFlow, patch_nll
from mechanism.train.loss import TailLossConfig, tail_aware_loss, tail_k
from mechanism.train.fit import fit_flow, train_detector
from mechanism.train.config import TrainConfig

__all__ = [
    "HYPOTHESES", "AnalysisSettings", "analyze",
    "BackboneConfig", "load_backbone", "Checkpoint", "load_checkpoint", "save_checkpoint",
    "generate_demo", "Detector", "load_detector", "MechanismError", "Evaluation",
    "evaluate_detector", "FlowConfig", "FlowOutput", "PatchFlow", "patch_nll", "TailLossConfig",
    "tail_aware_loss", "tail_k", "fit_flow", "train_detector", "TrainConfig",
]
