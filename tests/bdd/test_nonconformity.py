"""Scenarios of features/nonconformity: raising, containment, assessment, similar records."""

from pytest_bdd import scenarios

scenarios("nonconformity/raising_and_containment.feature", "nonconformity/assessment.feature",
          "nonconformity/similar_records.feature")
