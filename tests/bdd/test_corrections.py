"""Scenarios of features/corrections: cancelling, reopening and correcting records."""

from pytest_bdd import scenarios

scenarios("corrections/cancel_reopen_amend.feature")
