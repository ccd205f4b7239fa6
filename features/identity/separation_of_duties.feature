Feature: Separation of duties between the people of a corrective action
  The person who owns a corrective action does not approve its plan or close it (R2), and the
  person who verifies effectiveness implemented none of its actions (R3). These checks hold
  even when that person has the quality role.

  Background:
    Given a quality records store for "Northwind Medical Devices" with these people:
      | user       | full name       | roles          |
      | admin      | Alex Admin      | admin          |
      | mhernandez | Maria Hernandez | quality        |
      | jchen      | Jin Chen        | quality, owner |
      | apatel     | Anil Patel      | owner          |
      | lnguyen    | Linh Nguyen     | owner          |
      | rkowalski  | Roza Kowalski   | quality        |
      | tokafor    | Tobi Okafor     | reporter       |
      | dbrooks    | Dana Brooks     | auditor        |

  @R2 @21cfr11.10g
  Scenario: A quality engineer who owns a corrective action may not approve its own plan
    Given the corrective action "complaints" owned by "jchen" has reached "planned"
    When "jchen" approves the plan of "complaints"
    Then the command is refused under rule "R2"
    And nothing was recorded
    And the corrective action "complaints" is "planned"

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
