Feature: Showing that the actions do no harm
  A medical-device maker must verify that a corrective action does not adversely affect the
  ability to meet regulatory requirements, or the safety and performance of the device (ISO
  13485:2016 8.5.2 e; 21 CFR 820 as amended by the QMSR). In a store run under the ISO 13485
  profile a corrective action closes only once that is recorded for its current actions, with
  the risk file, document changes and training it rests on (R11).

  Background:
    Given the quality records store of "Northwind Medical Devices", with its quality team
    And the nonconformity "crack" was assessed as needing a corrective action
    And the nonconformity "resin" was assessed as needing a corrective action
    And the corrective action "housing" owned by "apatel" was opened for "crack"
    And the nonconformity "resin" was linked to "housing"

  @R11 @iso13485-8.5.2e @qmsr-820.10
  Scenario: Under ISO 13485 a verified corrective action closes only after its impact assessment
    Given the store is run under the "iso13485" profile, because "Certified to ISO 13485:2016"
    And the corrective action "housing" has since reached "verified"
    When "mhernandez" closes the corrective action "housing"
    Then the command is refused under rule "R11"
    And nothing was recorded
    And the corrective action "housing" is "verified"
    When "apatel" records for "housing" that the actions do no harm: "Like-for-like gate insert; validated moulding window unchanged", with the risk file "RMF-017 rev 4", the change "DCO-2291" and the training "TR-0456"
    And "mhernandez" closes the corrective action "housing"
    Then the corrective action "housing" is "closed"
    And the impact assessment of "housing" by "apatel" names the risk file "RMF-017 rev 4", the change "DCO-2291" and the training "TR-0456"

  @R11 @iso13485-8.5.2e
  Scenario: An assessment of earlier actions does not cover a new iteration
    Given the store is run under the "iso13485" profile, because "Certified to ISO 13485:2016"
    And the corrective action "housing" has since reached "implemented"
    And "apatel" recorded for "housing" that the actions do no harm: "First actions are like for like"
    And "rkowalski" found "housing" not effective: "Cracks again in lot L2417"
    And the corrective action "housing" has since reached "verified"
    When "mhernandez" closes the corrective action "housing"
    Then the command is refused under rule "R11"
    And nothing was recorded

  @iso9001-10.2.1d
  Scenario: A store run under ISO 9001 alone closes without an impact assessment
    Given the corrective action "housing" has since reached "verified"
    When "mhernandez" closes the corrective action "housing"
    Then the corrective action "housing" is "closed"

  @iso13485-4.2.5
  Scenario: Only an administrator changes the store's profile, and says why
    When "mhernandez" changes the store to the "iso13485" profile, because "Certified"
    Then the command is refused as not permitted
    And nothing was recorded
    When "admin" changes the store to the "iso13485" profile, because "Certified to ISO 13485:2016"
    Then the store is run under the "iso13485" profile
    And the history of the store shows the change to "iso13485" by "admin", because "Certified to ISO 13485:2016"
