"""Scenarios of features/corrective_action: the life of a corrective action."""

from pytest_bdd import scenarios

scenarios("corrective_action/lifecycle.feature")
