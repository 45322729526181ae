"""The patch normalizing flow and its per-patch NLL."""
from mechanism.flow.model import FlowConfig, FlowOutput, PatchFlow, patch_nll

__all__ = ["FlowConfig", "FlowOutput", "PatchFlow", "patch_nll"]
