Feature: Planning the effectiveness check up front
  What will prove a corrective action effective is decided before the results are in: the
  criteria, how they are checked and by when. The verdict then answers that plan. A check that
  cannot decide yet is extended, with a reason, by a signed entry; the corrective action waits
  for the verdict (ISO 13485:2016 8.5.2 f; ISO 9001:2015 10.2.1 d).

  Background:
    Given the quality records store of "Northwind Medical Devices", with its quality team
    And the nonconformity "crack" was assessed as needing a corrective action
    And the nonconformity "resin" was assessed as needing a corrective action
    And the corrective action "housing" owned by "apatel" was opened for "crack"
    And the nonconformity "resin" was linked to "housing"

  @iso13485-8.5.2f @iso9001-10.2.1d
  Scenario: The owner plans what will prove the actions effective, and the verdict answers it
    Given the corrective action "housing" has since reached "approved"
    When "apatel" plans the effectiveness check of "housing": "No cracked housings in 3 consecutive lots" by "100% visual inspection at final test", due in 60 days
    Then the effectiveness check of "housing" is "planned", due in 60 days, planned by "apatel"
    Given the corrective action "housing" has since reached "implemented"
    When "rkowalski" verifies "housing" as effective: "Lots L2401-L2403: no cracks"
    Then the effectiveness check of "housing" is "effective", due in 60 days, planned by "apatel"
    And the latest verification of "housing" answers the criteria "No cracked housings in 3 consecutive lots"

  @iso13485-8.5.2f @R5
  Scenario: An inconclusive check is extended with a reason and a signature
    Given the corrective action "housing" has since reached "implemented"
    And "apatel" planned the effectiveness check of "housing": "No cracked housings in 3 consecutive lots", due in 30 days
    When "rkowalski" finds the check of "housing" inconclusive: "Only one lot produced since the change", extending it by 45 days because "Line paused for the move to hall 2"
    Then the corrective action "housing" is "implemented"
    And the effectiveness check of "housing" is "planned", due in 75 days, planned by "apatel"
    And the check of "housing" was extended from 30 to 75 days from today by "rkowalski", signed meaning "verification", because "Line paused for the move to hall 2"

  @iso13485-8.5.2f @R7
  Scenario: Without a planned check there is nothing to extend
    Given the corrective action "housing" has since reached "implemented"
    When "rkowalski" finds the check of "housing" inconclusive: "Too early", extending it by 45 days because "Line paused"
    Then the command is refused under rule "R7"
    And nothing was recorded

  @iso13485-8.5.2f @R6
  Scenario: Criteria are not changed quietly once planned
    Given the corrective action "housing" has since reached "approved"
    And "apatel" planned the effectiveness check of "housing": "No cracked housings in 3 consecutive lots", due in 30 days
    When "apatel" plans the effectiveness check of "housing": "Fewer cracks than last quarter" by "complaint data", due in 10 days
    Then the command is refused under rule "R6"
    And nothing was recorded
    And the effectiveness check of "housing" is "planned", due in 30 days, planned by "apatel"

  @iso13485-8.5.2f @R3
  Scenario: Who carried out an action cannot call its check inconclusive
    Given the corrective action "housing" has since reached "implemented"
    And "apatel" planned the effectiveness check of "housing": "No cracked housings in 3 consecutive lots", due in 30 days
    When "lnguyen" finds the check of "housing" inconclusive: "Too early", extending it by 45 days because "Line paused"
    Then the command is refused as not permitted
    And nothing was recorded
