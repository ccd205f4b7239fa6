"""Scenarios of features/reports/migrating_history.feature: a legacy register migrated with
its history (SPEC §10).

The steps are in tests/bdd/steps/migration.py."""

from pytest_bdd import scenarios

scenarios("reports/migrating_history.feature")
