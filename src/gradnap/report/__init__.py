"""A self-contained static HTML report of a profile result (``gradnap report``)."""

from gradnap.report.build import ReportOptions, build_report

__all__ = ["ReportOptions", "build_report"]
