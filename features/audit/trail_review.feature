Feature: The audit trail is reviewed by exception, and the review is signed
  A reviewer does not read every event of a period: capa lists what needs a second look, namely
  corrections, reopenings, cancellations, due-date extensions, role and account changes, failed
  logins, lockouts, late entries and records migrated from a legacy system. The quality unit signs
  the review; the signed review keeps the period, how many exceptions of each kind were found and
  a fingerprint of exactly what was shown, so it is evidence of what the reviewer saw
  (EU GMP Annex 11 §9; FDA data-integrity guidance).

  Background:
    Given the quality records store of "Northwind Medical Devices", with its quality team

  @annex11-9
  Scenario: The review lists the corrections, cancellations and reopenings of the period
    Given a "major" nonconformity "crack" was raised
    And "mhernandez" corrected the "severity" of "crack" to "critical" because "Patient contact confirmed"
    And the nonconformity "crack" was cancelled because "Raised twice"
    And the nonconformity "crack" was reopened because "Not a duplicate after all"
    When the auditor reviews the audit trail of today
    Then the review lists 1 exception under "Amendments"
    And the review lists under "Amendments" the record "crack", by "mhernandez", because "Patient contact confirmed"
    And the review lists under "Cancellations" the record "crack", by "mhernandez", because "Raised twice"
    And the review lists under "Reopenings" the record "crack", by "mhernandez", because "Not a duplicate after all"
    And the review lists 0 exceptions under "Lockouts"

  @annex11-9
  Scenario: The review lists failed logins, lockouts and role changes
    Given "tokafor" gave a wrong password once
    And the account "lnguyen" was locked by five wrong passwords in a row
    And "admin" granted "tokafor" the role "owner"
    When the auditor reviews the audit trail of today
    Then the review lists 6 exceptions under "Failed logins"
    And the review lists 1 exception under "Lockouts"
    And the review lists under "Role and account changes" that "admin" granted "tokafor" the role "owner"

  @annex11-9
  Scenario: A nonconformity recorded long after it was detected is a late entry
    Given a nonconformity "old crack" detected 60 days ago was raised today
    And a "minor" nonconformity "scratch" was raised
    When the auditor reviews the audit trail of today
    Then the review lists under "Late entries" the record "old crack", by "tokafor"
    And the review does not list the record "scratch"

  @annex11-9 @21cfr11.50
  Scenario: The quality manager signs the review, and the dashboard shows it
    Given a "major" nonconformity "crack" was raised
    And "mhernandez" corrected the "severity" of "crack" to "critical" because "Patient contact confirmed"
    When the quality manager opens the dashboard
    Then the dashboard says the audit trail was never reviewed
    When "mhernandez" signs the review of the audit trail of today
    Then the signed review keeps the period, the count of each kind of exception and the fingerprint of the exceptions shown
    And the history of the audit-trail reviews shows the review signed by "Maria Hernandez" ("mhernandez"), meaning "review"
    And the integrity check of the store passes with that signature checked
    When the quality manager opens the dashboard
    Then the dashboard says the audit trail was last reviewed today by "Maria Hernandez"

  @annex11-9
  Scenario: An auditor reviews the trail but does not sign in the store
    Given a "major" nonconformity "crack" was raised
    And "mhernandez" corrected the "title" of "crack" to "Cracked housing at boss B2" because "Clearer title"
    When "dbrooks" signs the review of the audit trail of today
    Then the attempt is "refused"
    When the auditor reviews the audit trail of today
    Then the review lists under "Amendments" the record "crack", by "mhernandez", because "Clearer title"

  @annex11-9
  Scenario: A signed review edited in the database is detected
    Given "mhernandez" signed the review of the audit trail of today
    And someone who can write the store changed the fingerprint that review recorded
    Then the integrity check of the store reports the review's signature as not matching its content
