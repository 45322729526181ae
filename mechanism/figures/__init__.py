"""Figures fig1–fig8 of SPEC §5: one module per figure, each with a ``draw`` function that takes
saved results (an analyzer result, sweep runs, or every hypothesis' result for fig7) and
matplotlib axes and computes nothing; ``style`` holds the shared look, ``render`` writes them
all as PNG and PDF."""
