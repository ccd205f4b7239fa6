Feature: The quality dashboard
  Management review needs the state of the CAPA system at a glance, from data of every source, in
  one file that opens on any computer without a network.

  Background:
    Given a records store with nonconformities from several sources and one recurring problem

  @qsit-capa-2
  Scenario: Nonconformities are counted by the source they came from
    When the quality manager produces the dashboard
    Then the dashboard counts 3 nonconformities from "customer-complaint" and 1 from "supplier"
    And the dashboard is a single file that loads nothing from the network

  @qsit-capa-5 @iso13485-8.4
  Scenario: A problem that comes back on the same product for the same cause is shown as recurring
    When the quality manager produces the dashboard
    Then the dashboard shows 2 nonconformities on "IP-200 housing" recurring for the cause "machine"

  @iso9001-10.2.1b
  Scenario: Nonconformities are counted by the risk level of their assessment
    Given the supplier nonconformity was assessed with impact 1 and likelihood 2
    When the quality manager produces the dashboard
    Then the dashboard counts by risk level 2 "high", 1 "low" and 1 "not assessed"

  @qsit-capa-3 @iso13485-8.4
  Scenario: A nonconformity raised in error is left out of the figures
    Given the third complaint was cancelled as raised in error
    When the quality manager produces the dashboard
    Then the dashboard counts 2 nonconformities from "customer-complaint" and 1 from "supplier"
    And the dashboard says that cancelled records are left out
