"""Scenarios of features/rules: each rule refuses what it forbids and records nothing."""

from pytest_bdd import scenarios

scenarios("rules/refusals.feature")
