@cli
Feature: Working from the command line
  The same records and the same rules from a terminal or a script. A refused command says
  which rule refused it and writes nothing; its exit status tells a script what happened:
  1 refused by a rule, 2 invalid input, 3 not found, 4 nobody (or not permitted) acting.

  Background:
    Given the quality records store of "Northwind Medical Devices", with its quality team

  @iso9001-10.2.1a @R8
  Scenario: Raising a nonconformity and reading it back
    When "tokafor" raises at the command line the "major" nonconformity "crack" from "customer complaint", titled "Cracked housing on IP-200"
    Then the command line succeeds
    And the command line reports "crack" as "open" at version 1
    And the nonconformity "crack" is number "0001" of this year
    When "dbrooks" shows at the command line the nonconformity "crack"
    Then the command line succeeds
    And the command line shows the "title" as "Cracked housing on IP-200"
    And the command line shows the "status" as "open"
    And the command line shows the "source" as "customer-complaint"
    And the command line shows the "reported by" as "tokafor"

  @R1 @iso9001-10.2.1b
  Scenario: A rule's refusal exits with status 1, names the rule and writes nothing
    Given the nonconformity "records" was raised
    When "mhernandez" assesses at the command line "records" at impact 2 and likelihood 1, needing no corrective action and giving no rationale
    Then the command line refuses with exit status 1
    And the command line message names rule "R1"
    And the command line explains itself in a line or two, without a traceback
    And nothing was recorded
    And the nonconformity "records" is "open"

  @R2 @21cfr11.10g
  Scenario: An owner approving their own plan is refused at the command line
    Given the corrective action "complaints" owned by "jchen" has reached "planned"
    When "jchen" approves at the command line the plan of "complaints"
    Then the command line refuses with exit status 1
    And the command line message names rule "R2"
    And nothing was recorded
    And the corrective action "complaints" is "planned"

  @qsit-capa-4
  Scenario: Invalid input exits with status 2 and writes nothing
    When "tokafor" raises at the command line a nonconformity of severity "catastrophic"
    Then the command line refuses with exit status 2
    And the command line explains itself in a line or two, without a traceback
    And nothing was recorded

  Scenario: A record that does not exist exits with status 3
    When "dbrooks" shows at the command line the nonconformity numbered "0099" of this year
    Then the command line refuses with exit status 3
    And the command line explains itself in a line or two, without a traceback

  @R8 @21cfr11.10g
  Scenario: Nobody identified exits with status 4 and writes nothing
    When a nonconformity is raised at the command line with nobody identified
    Then the command line refuses with exit status 4
    And the command line explains itself in a line or two, without a traceback
    And nothing was recorded

  @21cfr11.10g
  Scenario: An auditor reads but cannot write
    When "dbrooks" raises at the command line the "minor" nonconformity "label" from "internal audit", titled "Label smudged"
    Then the command line refuses with exit status 4
    And nothing was recorded

  Scenario: Only setting up a store creates one
    When "tokafor" raises at the command line a nonconformity in a store that does not exist
    Then the command line refuses with exit status 3
    And the command line says how to create a store
    And no store was created there

  Scenario: Setting up a new store names its first administrator
    When "mhernandez" sets up at the command line a new store for "Southwind Diagnostics"
    Then the command line succeeds
    And the new store belongs to "Southwind Diagnostics" and is administered by "mhernandez"
