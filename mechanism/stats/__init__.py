"""Pure statistics used by the analyzers (numpy/scipy in, floats and small records out)."""
