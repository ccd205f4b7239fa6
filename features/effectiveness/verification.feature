Feature: Verifying effectiveness and closing
  A corrective action is not finished when its actions are done: someone independent of the
  work verifies that the problem is really gone. Only then may it close, and the
  nonconformities it was opened for close with it, in the same save (R4; ISO 9001:2015
  10.2.1 d and 10.2.2 b). An action that did not work sends the corrective action back to
  investigation for a new iteration.

  Background:
    Given the quality records store of "Northwind Medical Devices", with its quality team
    And the nonconformity "crack" was assessed as needing a corrective action
    And the nonconformity "resin" was assessed as needing a corrective action
    And the corrective action "housing" owned by "apatel" was opened for "crack"
    And the nonconformity "resin" was linked to "housing"

  @iso9001-10.2.1d @iso9001-10.2.2b @qsit-capa-8 @iso13485-8.5.2f @fda-cp-capa
  Scenario: An independent verifier finds the corrective action effective
    Given the corrective action "housing" has since reached "implemented"
    When "rkowalski" verifies "housing" as effective: "Six lots, 2,400 units since the change: no cracks"
    Then the corrective action "housing" is "verified"
    And the latest verification of "housing" finds it "effective", signed by "rkowalski" meaning "verification", noting "Six lots, 2,400 units since the change: no cracks"
    And the nonconformity "crack" is "linked"

  @R4 @iso9001-10.2.1d @iso9001-10.2.2b @iso13485-8.5.2f
  Scenario: Closing a verified corrective action closes its nonconformities with it
    Given the corrective action "housing" has since reached "verified"
    When "mhernandez" closes the corrective action "housing"
    Then the corrective action "housing" is "closed"
    And the closure of the corrective action "housing" is signed by "mhernandez", meaning "approval"
    And the nonconformity "crack" was closed together with "housing"
    And the nonconformity "resin" was closed together with "housing"

  @R4 @iso9001-10.2.1d @iso13485-8.5.2f
  Scenario Outline: A corrective action cannot close before its effectiveness is verified
    Given the corrective action "housing" has since reached "<state>"
    When "mhernandez" closes the corrective action "housing"
    Then the command is refused under rule "R4"
    And nothing was recorded
    And the corrective action "housing" is "<state>"
    And the nonconformity "crack" is "linked"
    And the nonconformity "resin" is "linked"

    Examples:
      | state        |
      | open         |
      | investigated |
      | planned      |
      | approved     |
      | implemented  |

  @R4 @iso9001-10.2.1d @iso13485-8.5.2f
  Scenario: A linked nonconformity cannot be closed on its own
    Given the corrective action "housing" has since reached "verified"
    When "mhernandez" closes the nonconformity "crack"
    Then the command is refused under rule "R4"
    And nothing was recorded
    And the nonconformity "crack" is "linked"

  @iso9001-10.2.1d @iso9001-10.2.2b @iso13485-8.5.2f
  Scenario: An ineffective result starts a new iteration and keeps the first one on record
    Given the corrective action "housing" has since reached "implemented"
    When "rkowalski" verifies "housing" as not effective: "Two cracked bosses in lot L2402, built after the change"
    Then the corrective action "housing" is "investigated"
    And the corrective action "housing" is in iteration 2
    And the latest verification of "housing" finds it "not effective", signed by "rkowalski" meaning "verification", noting "Two cracked bosses in lot L2402, built after the change"
    And action "A1" of "housing" was done by "lnguyen", noting "Done as planned"
    And the nonconformity "crack" is "linked"

  @iso9001-10.2.1d @iso9001-10.2.1b @iso9001-10.2.1c @iso13485-8.5.2f
  Scenario: The second iteration is investigated again and gets a plan of its own
    Given the corrective action "housing" has since reached "implemented"
    And "rkowalski" found "housing" not effective: "Two cracked bosses in lot L2402"
    When "apatel" records a "ishikawa" analysis of "housing": root cause "Resin moisture above 0.02 % weakens the boss", category "material"
    And "apatel" plans the "corrective" action "Check resin moisture before each moulding run" for "housing", assigned to "lnguyen" and due in 10 days
    Then the corrective action "housing" is "planned"
    And the analyses of "housing", oldest first, are:
      | iteration | method   | root cause                                           | by     |
      | 1         | ishikawa | Worn gate insert on mould M-17 gives thin boss walls | apatel |
      | 2         | ishikawa | Resin moisture above 0.02 % weakens the boss         | apatel |
    And the plan of "housing" lists:
      | action | text                                          | assignee | type       | due in days | state | iteration |
      | A1     | Sort and rework the affected lot              | lnguyen  | correction | 14          | done  | 1         |
      | A2     | Check resin moisture before each moulding run | lnguyen  | corrective | 10          | open  | 2         |

  @R7 @iso9001-10.2.1b @iso9001-10.2.1d @iso13485-8.5.2f
  Scenario: A second iteration is not planned before its root cause is examined again
    Given the corrective action "housing" has since reached "implemented"
    And "rkowalski" found "housing" not effective: "Two cracked bosses in lot L2402"
    When "apatel" plans the "corrective" action "Check resin moisture before each moulding run" for "housing", assigned to "lnguyen" and due in 10 days
    Then the command is refused under rule "R7"
    And nothing was recorded

  @qsit-capa-8 @R7
  Scenario: The plan of the second iteration needs its own approval before anyone acts on it
    Given the corrective action "housing" has since reached "implemented"
    And "rkowalski" found "housing" not effective: "Two cracked bosses in lot L2402"
    And "apatel" re-examined the root cause of "housing": "Resin moisture above 0.02 % weakens the boss", category "material"
    And "apatel" planned the "corrective" action "Check resin moisture before each moulding run" for "housing", assigned to "lnguyen" and due in 10 days
    When "lnguyen" completes action "A2" of "housing" noting "Moisture check in WI-220 rev C"
    Then the command is refused under rule "R7"
    And nothing was recorded
    And action "A2" of "housing" is still open

  @R4 @iso9001-10.2.1d @iso13485-8.5.2f
  Scenario: A corrective action cannot close while its second iteration is unverified
    Given the corrective action "housing" has since reached "implemented"
    And "rkowalski" found "housing" not effective: "Two cracked bosses in lot L2402"
    And "apatel" re-examined the root cause of "housing": "Resin moisture above 0.02 % weakens the boss", category "material"
    And "apatel" planned the "corrective" action "Check resin moisture before each moulding run" for "housing", assigned to "lnguyen" and due in 10 days
    When "mhernandez" closes the corrective action "housing"
    Then the command is refused under rule "R4"
    And nothing was recorded
    And the nonconformity "crack" is "linked"

  @R4 @iso9001-10.2.1d @iso9001-10.2.2b @iso13485-8.5.2f
  Scenario: A second iteration found effective closes the corrective action and its nonconformities
    Given the corrective action "housing" has since reached "implemented"
    And "rkowalski" found "housing" not effective: "Two cracked bosses in lot L2402"
    And the corrective action "housing" has since reached "verified"
    When "mhernandez" closes the corrective action "housing"
    Then the corrective action "housing" is "closed"
    And the corrective action "housing" is in iteration 2
    And the latest verification of "housing" finds it "effective", signed by "rkowalski" meaning "verification", noting "No recurrence in six lots since the change"
    And the nonconformity "crack" was closed together with "housing"
    And the nonconformity "resin" was closed together with "housing"

  @iso9001-10.2.1d @iso13485-8.5.2f
  Scenario: Effectiveness needs a written verdict
    Given the corrective action "housing" has since reached "implemented"
    When "rkowalski" verifies "housing" as effective: " "
    Then the command is refused as invalid input
    And nothing was recorded
    And the corrective action "housing" is "implemented"
