"""Text of the report: per-hypothesis tables, REPORT.md, the study's side-by-side."""
