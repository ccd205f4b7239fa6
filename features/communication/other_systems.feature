Feature: Telling other systems what happened to quality records
  The ERP holds the lots of raised nonconformities, and complaint handling wants to know when a
  corrective action is closed. An administrator decides which system learns of which events;
  capa sends each such event to it, signed so that the system can tell it came from capa, tries
  again when the system does not answer, and records every attempt, so that who was told what,
  and when, can be shown.

  Background:
    Given the quality records store of "Northwind Medical Devices", with its quality team
    And the ERP of "Northwind Medical Devices" is listening

  @iso9001-7.4
  Scenario: The ERP learns of a raised nonconformity, signed by capa
    Given "admin" subscribed the ERP to raised nonconformities
    When a nonconformity "housing" is raised at final inspection
    And "mhernandez" sends the events that are due to other systems
    Then the ERP received the raising of "housing" 1 time, signed with the secret it was given
    And the delivery to the ERP is recorded as delivered after 1 attempt

  @iso9001-7.4
  Scenario: A system that fails to answer is tried again, and every attempt is recorded
    Given "admin" subscribed the ERP to raised nonconformities
    And the ERP will fail the next request
    When a nonconformity "housing" is raised at final inspection
    And "mhernandez" sends the events that are due to other systems
    And "mhernandez" sends the events that are due to other systems
    Then the ERP received the raising of "housing" 2 times, signed with the secret it was given
    And the delivery to the ERP is recorded as delivered after 2 attempts

  @iso9001-7.4
  Scenario: A refused command tells no other system anything
    Given "admin" subscribed the ERP to raised nonconformities
    When "apatel" tries to raise a nonconformity
    Then the command is refused as not permitted
    And nothing was recorded
    And once "mhernandez" sends the events that are due, the ERP has received nothing

  Scenario: Only an administrator decides which systems are told
    When "mhernandez" subscribes the address "https://erp.northwind.example/capa" to raised nonconformities
    Then the command is refused as not permitted
    And nothing was recorded

  Scenario: A subscription that would keep a password in the audit trail is refused
    When "admin" subscribes the address "https://svc:hunter2@erp.northwind.example/capa" to raised nonconformities
    Then the command is refused as invalid input
    And nothing was recorded
