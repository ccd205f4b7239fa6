"""Scenarios of features/nonconformity: raising, containment and assessment."""

from pytest_bdd import scenarios

scenarios("nonconformity/raising_and_containment.feature", "nonconformity/assessment.feature")
