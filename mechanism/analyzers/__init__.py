"""The four mechanism analyses of the Tail-Aware Loss (SPEC §4), one module per hypothesis."""
