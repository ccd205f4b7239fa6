"""Scenarios of features/reports: the 8D record report, bulk intake, the dashboard, trends,
the management review pack.

The steps are in tests/bdd/steps/reports.py and management_review.py."""

from pytest_bdd import scenarios

scenarios("reports/record_report.feature", "reports/bulk_intake.feature",
          "reports/dashboard.feature", "reports/trends.feature",
          "reports/management_review.feature")
