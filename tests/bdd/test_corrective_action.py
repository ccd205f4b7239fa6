"""Scenarios of features/corrective_action: the life of a corrective action, and the reminders
of actions that fall due."""

from pytest_bdd import scenarios

scenarios("corrective_action/lifecycle.feature", "corrective_action/reminders.feature")
