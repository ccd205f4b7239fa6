Feature: Separation of duties between the people of a corrective action
  The person who owns a corrective action does not approve its plan or close it (R2), and the
  person who verifies effectiveness implemented none of its actions, nor recorded one as done
  for someone else (R3). These checks hold even when that person has the quality role.

  Background:
    Given the quality records store of "Northwind Medical Devices", with its quality team

  @R2 @21cfr11.10g
  Scenario: A quality engineer who owns a corrective action may not approve its own plan
    Given the corrective action "complaints" owned by "jchen" has reached "planned"
    When "jchen" approves the plan of "complaints"
    Then the command is refused under rule "R2"
    And nothing was recorded
    And the corrective action "complaints" is "planned"

  @R2 @21cfr11.10g
  Scenario: The owner of a corrective action may not close it
    Given the corrective action "complaints" owned by "jchen" has reached "verified"
    When "jchen" closes the corrective action "complaints"
    Then the command is refused under rule "R2"
    And nothing was recorded
    And the corrective action "complaints" is "verified"
    And the nonconformity "complaints-nonconformity" is "linked"

  @R3 @iso9001-10.2.1d @qsit-capa-8
  Scenario: Someone who completed an action may not verify the corrective action
    Given the corrective action "housing" owned by "apatel" has reached "investigated"
    And "apatel" planned the "corrective" action "Replace gate insert" for "housing", assigned to "jchen" and due in 10 days
    And the corrective action "housing" has since reached "approved"
    And "jchen" completed action "A1" of "housing" noting "Insert replaced"
    When "jchen" verifies "housing" as effective: "No cracks since"
    Then the command is refused under rule "R3"
    And nothing was recorded
    And the corrective action "housing" is "implemented"

  @R3 @iso9001-10.2.1d @qsit-capa-8
  Scenario: Whoever recorded a completion on someone's behalf may not verify effectiveness
    Given the corrective action "housing" owned by "apatel" has reached "investigated"
    And "apatel" planned the "correction" action "Sort and scrap housings from lot L2311" for "housing", assigned to "lnguyen" and due in 7 days
    And "mhernandez" approved the plan of "housing"
    And "jchen" recorded for "lnguyen" that action "A1" of "housing" was done, noting "312 housings sorted" because "Night shift has no terminal; paper record WO-4471"
    When "jchen" verifies "housing" as effective: "No cracks since"
    Then the command is refused under rule "R3"
    And nothing was recorded
    And the corrective action "housing" is "implemented"
