"""The commands' work, composed from the stages below: ``analyze`` (load checkpoints, run the
analyzers, write tables and manifest), ``report`` (analyses + observed effect + figures +
REPORT.md in one folder) and ``demo`` (data → sweeps → report on the embedded demo set)."""
