"""The hypotheses by name: titles, configs and result types of the four analyzers."""
from __future__ import annotations

from mechanism.analyzers import h1_edge, h3_gradient, h4_dilution, h7_calibration

HYPOTHESES = ("H1", "H3", "H4", "H7")
TITLES = {"H1": "tail patches sit on image boundaries", "H3": "gradient concentration",
          "H4": "top-k ratio dilution", "H7": "latent calibration"}
CONFIGS = {"H1": h1_edge.H1Config, "H3": h3_gradient.H3Config, "H4": h4_dilution.H4Config,
           "H7": h7_calibration.H7Config}
RESULT_TYPES = {"H1": h1_edge.H1Result, "H3": h3_gradient.H3Result, "H4": h4_dilution.H4Result,
                "H7": h7_calibration.H7Result}
