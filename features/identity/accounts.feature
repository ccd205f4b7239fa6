Feature: Accounts, lockout and account history
  People are managed by an administrator. Five wrong passwords in a row lock an account until an
  administrator unlocks it (21 CFR 11.300(d)); every failed attempt is recorded with its time and
  the user id, never the attempted password. A lost password is replaced by an administrator
  with a temporary one that its user must change before doing anything else (21 CFR 11.300(c)).
  The history of an account is part of the audit trail (21 CFR 11.10(e)).

  Background:
    Given the quality records store of "Northwind Medical Devices", with its quality team

  @21cfr11.10g
  Scenario: Five wrong passwords in a row lock the account until an administrator unlocks it
    When "apatel" gives a wrong password 5 times
    Then the account "apatel" is "locked"
    And "apatel" cannot sign in even with the right password
    When "admin" unlocks the account "apatel"
    Then the account "apatel" is "active"
    And "apatel" can sign in with the right password

  @21cfr11.10g @21cfr11.10e
  Scenario: An unlock that no administrator signed opens nothing
    When "apatel" gives a wrong password 5 times
    And someone who can write the store unlocks the account "apatel" without an administrator's signature
    Then "apatel" cannot sign in even with the right password
    And the integrity check of the store reports that unlock as signed by no administrator

  @21cfr11.300c @21cfr11.10g
  Scenario: A lost password is reset by an administrator and its user chooses a new one first
    When "admin" resets the password of "apatel" because "she lost it"
    Then "apatel" cannot sign in with the old password
    And "apatel" can sign in with the temporary password but may do nothing else until choosing her own
    When "apatel" chooses her own password
    Then "apatel" can list the nonconformities with her own password
    And the integrity check of the store passes with the reset signed by "admin"

  @21cfr11.300c @21cfr11.10e
  Scenario: A password reset that no administrator signed lets no one in
    When someone who can write the store resets the password of "apatel" to one of their own, without an administrator's signature
    Then "apatel" cannot sign in with the password the writer chose
    And the integrity check of the store reports that reset as signed by no administrator

  @21cfr11.10g
  Scenario: Sixteen wrong passwords given at the same moment still lock the account after five
    When "apatel" is given a wrong password 16 times at the same moment
    Then the account "apatel" is "locked"
    And exactly 5 failed attempts of "apatel" are recorded
    And "apatel" cannot sign in even with the right password

  @21cfr11.10g
  Scenario: Four wrong passwords and then the right one do not lock the account
    When "apatel" gives a wrong password 4 times
    Then "apatel" can sign in with the right password
    And the account "apatel" is "active"

  @21cfr11.10e @annex11-9 @R8
  Scenario: The history of an account shows who changed it and when
    Given "admin" granted "tokafor" the role "owner"
    And "tokafor" gave a wrong password once
    And "admin" revoked the role "owner" from "tokafor"
    When the auditor reads the account history of "tokafor"
    Then the account history lists, oldest first:
      | event         | by                    |
      | UserAdded     | Alex Admin (admin)    |
      | RoleGranted   | Alex Admin (admin)    |
      | LoginFailed   | Tolu Okafor (tokafor) |
      | RoleRevoked   | Alex Admin (admin)    |
    And no event in the store holds a password in clear
