"""Figures fig1–fig8 of SPEC §5: one module per figure, each with a ``draw`` function that takes
result objects and matplotlib axes; ``render`` writes them all as PNG and PDF."""
