"""Build the mechanism report: analyses, observed effect, figures and REPORT.md."""
from mechanism.report.run import ReportOutcome, build_report

__all__ = ["ReportOutcome", "build_report"]
