"""The four mechanism analyses of the Tail-Aware Loss (SPEC §4), one package per hypothesis:
``h1_edge``, ``h3_gradient``, ``h4_dilution``, ``h7_calibration``. Each measures, returns a
frozen result and states its verdict; none renders (tables live in ``mechanism.report``).
``context`` holds what every result states about its inputs; ``registry`` names them all."""
