"""Scenarios of features/reports: the 8D record report, bulk intake, the dashboard, trends.

The steps are in tests/bdd/steps/reports.py."""

from pytest_bdd import scenarios

scenarios("reports/record_report.feature", "reports/bulk_intake.feature",
          "reports/dashboard.feature", "reports/trends.feature")
