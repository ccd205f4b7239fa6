"""Scenarios of features/identity: roles, separation of duties, signatures, accounts.

The steps are in tests/bdd/steps/identity.py."""

from pytest_bdd import scenarios

scenarios("identity")
