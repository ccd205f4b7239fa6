"""Scenarios of features/communication: telling other systems what happened to records."""

from pytest_bdd import scenarios

scenarios("communication/other_systems.feature")
