Feature: Migrating the history of a legacy CAPA register
  Moving to a new system must not lose years of records: closed and cancelled CAPAs arrive in the
  state the old register gave them, with their original dates, and every record says where it
  came from and who brought it over, so that the history stays a controlled record.

  Background:
    Given a legacy register with a closed CAPA, a cancelled one and an open one

  @iso9001-10.2.2a @iso9001-10.2.2b
  Scenario: Closed legacy CAPAs arrive closed, with their original dates and where they came from
    When the quality manager migrates the register from "QMS 2019"
    Then the closed CAPA is closed on its legacy closing date, with its corrective action closed
    And its history says it was migrated from "QMS 2019" by the quality manager
    And the mean time to close on the dashboard is counted from the legacy dates

  @iso9001-10.2.2a
  Scenario: Migrating the same register again records nothing twice
    When the quality manager migrates the register from "QMS 2019"
    And the quality manager migrates the register from "QMS 2019"
    Then the store holds 3 migrated records and the second run reports 3 already migrated

  @iso9001-10.2.2a
  Scenario: A closing date before the problem was found refuses the whole register
    When the quality manager migrates a register whose closed CAPA closed before it was found
    Then the migration is refused, naming row 2 and its closing date
    And nothing from the register is recorded
