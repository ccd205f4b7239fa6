"""Scenarios of features/effectiveness: verifying effectiveness and closing."""

from pytest_bdd import scenarios

scenarios("effectiveness/verification.feature")
