"""The text of a report, from results already computed (no model runs here): per-result tables (``tables/``: markdown and CSV of
each hypothesis and of the observed effect), result files on disk (``files``), the one-line
key evidence of a result (``headline``), the sweep sections (``sweeps``), the study's published
claims (``study``) and REPORT.md (``document``)."""
