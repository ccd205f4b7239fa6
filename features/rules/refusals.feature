Feature: The rules refuse what they forbid, and a refusal records nothing
  Each workflow rule R1 to R8 is enforced by the system itself. A refused step says which rule
  refused it and leaves no trace in the records: the store holds exactly what it held before.
  The separation of duties, R2 and R3, is shown in identity/separation_of_duties.feature.

  Background:
    Given the quality records store of "Northwind Medical Devices", with its quality team

  @R1 @iso9001-10.2.1b @qsit-capa-7
  Scenario: R1 - no corrective action without a written rationale
    Given the nonconformity "records" was raised
    When "mhernandez" assesses "records" at impact 2 and likelihood 1, needing no corrective action and giving no rationale
    Then the command is refused under rule "R1"
    And nothing was recorded
    And the nonconformity "records" is "open"

  @R4 @iso9001-10.2.1d @iso9001-10.2.2b
  Scenario: R4 - a corrective action closes only after its effectiveness was verified
    Given the corrective action "housing" owned by "apatel" has reached "implemented"
    When "mhernandez" closes the corrective action "housing"
    Then the command is refused under rule "R4"
    And nothing was recorded
    And the corrective action "housing" is "implemented"
    And the nonconformity "housing-nonconformity" is "linked"

  @R5
  Scenario: R5 - a due date moves only with a stated reason
    Given the corrective action "housing" owned by "apatel" has reached "approved"
    When "mhernandez" extends action "A1" of "housing" by 14 days without a reason
    Then the command is refused under rule "R5"
    And nothing was recorded
    And action "A1" of "housing" is due in 14 days

  @R5
  Scenario: R5 - an action may not be planned with a due date already past
    Given the corrective action "housing" owned by "apatel" has reached "investigated"
    When "apatel" plans the "correction" action "Sort housings from lot L2311" for "housing", assigned to "lnguyen", due 3 days ago
    Then the command is refused under rule "R5"
    And nothing was recorded
    And the corrective action "housing" is "investigated"

  @R5
  Scenario: R5 - a due date already past is accepted only with a stated reason
    Given the corrective action "housing" owned by "apatel" has reached "investigated"
    When "apatel" accepts a past due date, planning the "correction" action "Sort housings from lot L2311" for "housing", assigned to "lnguyen", due 3 days ago, because "Sorted on the night shift; recorded late"
    Then action "A1" of "housing" was due 3 days ago, accepted because "Sorted on the night shift; recorded late"

  @R6 @annex11-9 @21cfr11.10e
  Scenario: R6 - a correction states its reason
    Given a "minor" nonconformity "label" was raised
    When "mhernandez" corrects the "severity" of "label" to "major" without a reason
    Then the command is refused under rule "R6"
    And nothing was recorded
    And the nonconformity "label" records:
      | severity | minor |

  @R7 @21cfr11.10f
  Scenario: R7 - a plan that was never made cannot be approved
    Given the corrective action "housing" owned by "apatel" has reached "investigated"
    When "mhernandez" approves the plan of "housing"
    Then the command is refused under rule "R7"
    And nothing was recorded
    And the corrective action "housing" is "investigated"

  @R8 @21cfr11.10e
  Scenario: R8 - nothing is recorded without knowing who does it
    When a nonconformity is raised with nobody identified as acting
    Then the command is refused because nobody is identified as acting
    And nothing was recorded

  @R8 @21cfr11.10e @iso9001-10.2.2a
  Scenario: R8 - every event in the history names who and when, in UTC
    Given the corrective action "housing" owned by "apatel" has reached "closed"
    When the auditor reads the history of "housing"
    Then every event in the history names who acted and when, in UTC
    And the history lists, oldest first:
      | version | event                | by         | reason |
      | 1       | Opened               | mhernandez |        |
      | 2       | RootCauseAnalysed    | apatel     |        |
      | 3       | ActionItemPlanned    | apatel     |        |
      | 4       | PlanApproved         | mhernandez |        |
      | 5       | ActionItemCompleted  | lnguyen    |        |
      | 6       | EffectivenessVerified | rkowalski |        |
      | 7       | Closed               | mhernandez |        |
    When the auditor reads the history of "housing-nonconformity"
    Then every event in the history names who acted and when, in UTC
    And the history lists, oldest first:
      | version | event                      | by         | reason |
      | 1       | Raised                     | tokafor    |        |
      | 2       | Assessed                   | mhernandez |        |
      | 3       | LinkedToCorrectiveAction   | mhernandez |        |
      | 4       | ClosedWithCorrectiveAction | mhernandez |        |
