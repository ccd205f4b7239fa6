Feature: The history of a record is its audit trail
  Every change to a record is an event that says who made it, when (UTC) and, for corrections,
  why. An auditor reads the full history, and can see any record exactly as it stood at an
  earlier version or moment, such as what the approver saw when signing (21 CFR 11.10(e);
  ISO 9001:2015 10.2.2 a).

  Background:
    Given the quality records store of "Northwind Medical Devices", with its quality team

  @21cfr11.10e @annex11-9 @iso9001-10.2.2a @R8 @iso13485-4.2.5
  Scenario: The history lists every change, old and new values, with who and why
    Given a "major" nonconformity "crack" was raised
    And the nonconformity "crack" was contained
    And "mhernandez" corrected the "severity" of "crack" to "critical" because "Patient contact confirmed"
    And the nonconformity "crack" was assessed as needing a corrective action
    And the nonconformity "crack" was cancelled because "Merged into the complaint record"
    When the auditor reads the history of "crack"
    Then the history lists, oldest first:
      | version | event     | by         | reason                           |
      | 1       | Raised    | tokafor    |                                  |
      | 2       | Contained | tokafor    |                                  |
      | 3       | Amended   | mhernandez | Patient contact confirmed        |
      | 4       | Assessed  | mhernandez |                                  |
      | 5       | Cancelled | mhernandez | Merged into the complaint record |
    And the history shows the "severity" changed from "major" to "critical" by "mhernandez" because "Patient contact confirmed"
    And the history shows the "status" changed from "assessed" to "cancelled" by "mhernandez" because "Merged into the complaint record"
    And every event in the history names who acted and when, in UTC
    And the history numbers the record's versions 1, 2, 3 … without a gap, in the store's order

  @21cfr11.10e @iso9001-10.2.2a
  Scenario: A record as it stood at an earlier version
    Given the nonconformity "crack" was raised
    And the nonconformity "crack" was contained
    And "mhernandez" corrected the "title" of "crack" to "Cracked housing at screw boss B2" because "Clearer title"
    When the auditor views "crack" as it stood at version 1
    Then the view is version 1
    And the view shows the "status" as "open"
    And the view shows the "title" as "Crack found at final inspection"
    When the auditor views "crack" as it stood at version 2
    Then the view shows the "status" as "contained"
    And the view shows the "title" as "Crack found at final inspection"
    When the auditor views "crack" as it stood at version 3
    Then the view shows the "title" as "Cracked housing at screw boss B2"

  @21cfr11.10e @iso9001-10.2.2a
  Scenario: A record as it stood at an earlier moment
    Given a "major" nonconformity "crack" was raised
    And the moment "before the correction" is noted
    And "mhernandez" corrected the "severity" of "crack" to "critical" because "Patient contact confirmed"
    When the auditor views "crack" as it stood at the moment "before the correction"
    Then the view is version 1
    And the view shows the "severity" as "major"

  @21cfr11.10e @iso9001-10.2.2a @qsit-capa-8
  Scenario: The plan as the approver saw it when signing
    Given the corrective action "housing" owned by "apatel" has reached "approved"
    And "apatel" planned the "preventive" action "Add dryer residence time to the control plan" for "housing", assigned to "apatel" and due in 30 days
    When the auditor views "housing" as its approver saw it when signing
    Then the view shows the "status" as "planned"
    And the view shows 1 planned action items

  @21cfr11.10e
  Scenario: A version that never existed is not invented
    Given the nonconformity "crack" was raised
    When the auditor views "crack" as it stood at version 5
    Then the command is refused as not found

  @21cfr11.10e
  Scenario: A record is not shown at a moment before it existed
    Given the moment "before anything happened" is noted
    And the nonconformity "crack" was raised
    When the auditor views "crack" as it stood at the moment "before anything happened"
    Then the command is refused as not found
