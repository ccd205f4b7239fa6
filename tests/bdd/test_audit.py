"""Scenarios of features/audit: the history of a record as its audit trail."""

from pytest_bdd import scenarios

scenarios("audit/history.feature")
