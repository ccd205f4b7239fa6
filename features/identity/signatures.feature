Feature: Electronic signatures
  Approving a plan, verifying effectiveness and closing are signed. A signature shows the
  signer's printed name, the date and time in UTC and what the signature means, and it is bound
  to the exact content that was signed (21 CFR 11.50, 11.70). Signing takes both components,
  the user id and the password, checked again at the moment of signing (21 CFR 11.200(a)).

  Background:
    Given the quality records store of "Northwind Medical Devices", with its quality team
    And the corrective action "housing" owned by "apatel" has reached "planned"

  @R9 @21cfr11.50 @21cfr11.70
  Scenario: The signature shows the printed name, the time, the meaning and the content signed
    When "mhernandez" signs the approval of "housing" with her own password
    Then the corrective action "housing" is "approved"
    And the history of "housing" shows the approval signed by "Maria Hernandez" ("mhernandez") meaning "approval" at a UTC time
    And the signature of that approval is bound to the content of "housing" as it was signed

  @R10 @21cfr11.200
  Scenario: Signing with a wrong password is refused and the failed attempt recorded
    When "mhernandez" signs the approval of "housing" with the password "not-her-password"
    Then the signing is refused as not authenticated
    And the corrective action "housing" is "planned"
    And the account history of "mhernandez" ends with a failed attempt that holds no password

  @R10 @21cfr11.200
  Scenario: Signing without presenting the password again is refused
    When "mhernandez" signs the approval of "housing" without giving her password again
    Then the signing is refused under rule "R10"
    And nothing was recorded
    And the corrective action "housing" is "planned"

  @21cfr11.70 @21cfr11.10e
  Scenario: A signature forged without the signer's password is reported
    When someone who can write the store records an approval of "housing" in the name of "mhernandez" without her password
    Then the history of "housing" shows that approval as signed by "Maria Hernandez"
    But the integrity check of the store reports that approval as forged
