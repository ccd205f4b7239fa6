Feature: Assessing a nonconformity
  Every nonconformity is risk-assessed before anything else is decided: risk is impact times
  likelihood, each from 1 to 5, and its level follows from the score. The assessment decides
  whether a corrective action is needed. When none is needed, the reason is written down
  (rule R1; ISO 9001:2015 10.2.1 b; FDA QSIT CAPA objective 7).

  Background:
    Given the quality records store of "Northwind Medical Devices", with its quality team
    And the nonconformity "crack" was raised

  @iso9001-10.2.1b @qsit-capa-6 @iso13485-8.5.2a
  Scenario Outline: Risk is impact times likelihood, and its level follows from the score
    When "mhernandez" assesses "crack" at impact <impact> and likelihood <likelihood>, needing a corrective action
    Then the risk of "crack" is <risk>, level "<level>"

    Examples:
      | impact | likelihood | risk | level    |
      | 1      | 1          | 1    | low      |
      | 2      | 2          | 4    | low      |
      | 1      | 5          | 5    | medium   |
      | 3      | 3          | 9    | medium   |
      | 2      | 5          | 10   | high     |
      | 4      | 4          | 16   | high     |
      | 4      | 5          | 20   | critical |
      | 5      | 5          | 25   | critical |

  @iso9001-10.2.1b @qsit-capa-4 @iso13485-8.5.2a
  Scenario Outline: Impact and likelihood outside 1 to 5 are refused
    When "mhernandez" assesses "crack" at impact <impact> and likelihood <likelihood>, needing a corrective action
    Then the command is refused as invalid input
    And nothing was recorded
    And the nonconformity "crack" is not assessed

    Examples:
      | impact | likelihood |
      | 0      | 3          |
      | 6      | 3          |
      | 3      | 0          |
      | 3      | 6          |

  @iso9001-10.2.1b @qsit-capa-7 @iso13485-8.5.2a
  Scenario: A nonconformity that needs a corrective action
    When "mhernandez" assesses "crack" at impact 4 and likelihood 3, needing a corrective action
    Then the nonconformity "crack" is "assessed"
    And the assessment of "crack" by "mhernandez" requires a corrective action
    And the risk of "crack" is 12, level "high"

  @iso9001-10.2.1b @iso9001-10.2.1a @iso13485-8.5.2a
  Scenario: A contained nonconformity is assessed after its containment
    Given the nonconformity "crack" was contained
    When "mhernandez" assesses "crack" at impact 2 and likelihood 2, needing a corrective action
    Then the nonconformity "crack" is "assessed"
    And the risk of "crack" is 4, level "low"

  @R1 @iso9001-10.2.1b @qsit-capa-7 @iso13485-8.5.2a @iso13485-8.5.2c
  Scenario: A nonconformity that needs no corrective action carries the written rationale
    When "mhernandez" assesses "crack" at impact 2 and likelihood 1, needing no corrective action because "Isolated filing slip; certificate obtained and filed"
    Then the nonconformity "crack" is "assessed"
    And the assessment of "crack" by "mhernandez" requires no corrective action, because "Isolated filing slip; certificate obtained and filed"

  @R1 @iso9001-10.2.1b @qsit-capa-7 @iso13485-8.5.2a @iso13485-8.5.2c
  Scenario: Deciding that no corrective action is needed, without a rationale, is refused
    When "mhernandez" assesses "crack" at impact 2 and likelihood 1, needing no corrective action and giving no rationale
    Then the command is refused under rule "R1"
    And nothing was recorded
    And the nonconformity "crack" is "open"
    And the nonconformity "crack" is not assessed

  @R1 @iso9001-10.2.1b @iso13485-8.5.2a @iso13485-8.5.2c
  Scenario: A rationale of blank space is no rationale
    When "mhernandez" assesses "crack" at impact 2 and likelihood 1, needing no corrective action because "   "
    Then the command is refused under rule "R1"
    And nothing was recorded

  @iso9001-10.2.1b @qsit-capa-7 @iso13485-8.5.2a
  Scenario: A nonconformity that needs no corrective action is closed under a signed approval
    Given the nonconformity "crack" was assessed as needing no corrective action
    When "mhernandez" closes the nonconformity "crack"
    Then the nonconformity "crack" is "closed"
    And the closure of the nonconformity "crack" is signed by "mhernandez", meaning "approval"

  @R4 @qsit-capa-7
  Scenario: A nonconformity that needs a corrective action cannot be closed without one
    Given the nonconformity "crack" was assessed as needing a corrective action
    When "mhernandez" closes the nonconformity "crack"
    Then the command is refused under rule "R4"
    And nothing was recorded
    And the nonconformity "crack" is "assessed"

  @R7 @21cfr11.10f
  Scenario: A nonconformity is assessed once; a second assessment is refused
    Given the nonconformity "crack" was assessed as needing a corrective action
    When "mhernandez" assesses "crack" at impact 1 and likelihood 1, needing no corrective action because "Changed my mind"
    Then the command is refused under rule "R7"
    And nothing was recorded
    And the assessment of "crack" by "mhernandez" requires a corrective action
