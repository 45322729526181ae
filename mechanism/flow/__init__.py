"""The patch normalizing flow, its per-patch NLL and latent energy."""
from mechanism.flow.model import (PATCH_SCORES, FlowConfig, FlowOutput, PatchFlow, latent_energy,
                                  patch_nll)

__all__ = ["FlowConfig", "FlowOutput", "PatchFlow", "PATCH_SCORES", "latent_energy", "patch_nll"]
