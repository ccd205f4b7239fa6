Feature: Machines raise nonconformities with a token of their own
  A manufacturing execution system, an ERP or a complaint system reports nonconformities through
  a service account. An administrator creates it for reporting or quality work only and gives it
  tokens, each of which can be withdrawn. Such an account has no password and never signs, and
  only a token an administrator issued lets it in (21 CFR 11.10(d)).

  Background:
    Given the quality records store of "Northwind Medical Devices", with its quality team

  @21cfr11.10d @R8
  Scenario: An MES raises a nonconformity with its token
    Given "admin" created the service account "mes-line3" for "reporter" work, with a token
    When the machine raises a nonconformity with its token
    Then the nonconformity is recorded as reported by "mes-line3"

  @21cfr11.10d
  Scenario: A revoked token is refused
    Given "admin" created the service account "mes-line3" for "reporter" work, with a token
    And "admin" revoked that token because "the line controller was replaced"
    When the machine raises a nonconformity with its token
    Then the command is refused because nobody is identified as acting
    And nothing was recorded

  @21cfr11.10d
  Scenario: A machine's account cannot sign in with a password
    Given "admin" created the service account "mes-line3" for "reporter" work, with a token
    Then "mes-line3" cannot sign in with a password, having none

  @21cfr11.10d @21cfr11.10e
  Scenario: A token written into the store past capa lets no one in
    Given "admin" created the service account "mes-line3" for "reporter" work, with a token
    When someone who can write the store gives "mes-line3" a token of their own
    And the machine raises a nonconformity with that token
    Then the command is refused because nobody is identified as acting
    And nothing was recorded
    And the integrity check of the store reports that token as issued by no administrator
