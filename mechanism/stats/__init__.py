"""Pure statistics (numpy/scipy in, floats and small records out), used by eval, the analyzers
and sweeps: bootstrap intervals, edge distance, effect size, inequality (Gini), latent
calibration, top-k purity and metric summaries over seeds."""
