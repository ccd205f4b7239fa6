"""Scenarios of features/effectiveness: planning the check, verifying effectiveness, showing
that the actions do no harm, and closing."""

from pytest_bdd import scenarios

scenarios("effectiveness/verification.feature")
scenarios("effectiveness/planned_checks.feature")
scenarios("effectiveness/no_adverse_effect.feature")
