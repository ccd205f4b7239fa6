"""Scenarios of features/audit/integrity.feature: an auditor verifies the audit trail.

The steps are in tests/bdd/steps/integrity.py."""

from pytest_bdd import scenarios

scenarios("audit/integrity.feature")
