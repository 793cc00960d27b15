"""Renders claim outcomes as results.json, PNG figures, report.md and a self-contained HTML page."""

from gradkit.report.render import ReportEntry, json_safe, write_report, write_search_audit

__all__ = ["ReportEntry", "json_safe", "write_report", "write_search_audit"]
