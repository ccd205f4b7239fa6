"""Scenarios of features/audit: the history of a record as its audit trail, and the review of
the audit trail by exception."""

from pytest_bdd import scenarios

scenarios("audit/history.feature")
scenarios("audit/trail_review.feature")
