Feature: Similar nonconformities are pointed out
  Reviewing a nonconformity includes finding out whether similar nonconformities exist
  (ISO 9001:2015 10.2.1 b; ISO 13485 8.5.2 a), and analysing quality data is how recurring
  problems are found (ISO 13485 8.4; QSIT CAPA objective 5). When someone raises a
  nonconformity, capa names the open nonconformities of the same product whose title is
  similar, so that a duplicate or a recurrence is seen at once; it is a hint, never a refusal.
  Similar means: the same product (case aside) and titles sharing at least half of their words.
  The quality team can list the open nonconformities similar to any one of them.

  Background:
    Given the quality records store of "Northwind Medical Devices", with its quality team
    And the nonconformity "seal" was raised about "Pouch P-10" with the title "Seal strength low on pouch"

  @iso9001-10.2.1b @qsit-capa-5 @iso13485-8.5.2a @iso13485-8.4
  Scenario: Raising a nonconformity like an open one points that one out
    When "tokafor" raises the nonconformity "weak seal" about "Pouch P-10" with the title "Low seal strength"
    Then the nonconformity "weak seal" is "open"
    And "tokafor" is told that "seal" is a similar open nonconformity

  @iso9001-10.2.1b @iso13485-8.5.2a
  Scenario: The same title on another product is not pointed out
    When "tokafor" raises the nonconformity "tray seal" about "Tray T-2" with the title "Seal strength low on pouch"
    Then the nonconformity "tray seal" is "open"
    And "tokafor" is told of no similar open nonconformity

  @iso9001-10.2.1b @iso13485-8.5.2a
  Scenario: A different problem with the same product is not pointed out
    When "tokafor" raises the nonconformity "label" about "Pouch P-10" with the title "Label smudged"
    Then the nonconformity "label" is "open"
    And "tokafor" is told of no similar open nonconformity

  @iso9001-10.2.1b @iso13485-8.5.2a
  Scenario: A cancelled nonconformity is not pointed out
    Given the nonconformity "seal" was cancelled because "Raised twice by mistake"
    When "tokafor" raises the nonconformity "weak seal" about "Pouch P-10" with the title "Low seal strength"
    Then the nonconformity "weak seal" is "open"
    And "tokafor" is told of no similar open nonconformity

  @iso9001-10.2.1b @qsit-capa-5 @iso13485-8.5.2a @iso13485-8.4
  Scenario: The quality team lists the open nonconformities similar to one of them
    Given the nonconformity "weak seal" was raised about "pouch p-10" with the title "Weak seal strength on pouch"
    And the nonconformity "label" was raised about "Pouch P-10" with the title "Label smudged"
    And the nonconformity "tray" was raised about "Tray T-2" with the title "Seal strength low"
    When "mhernandez" lists the nonconformities similar to "weak seal"
    Then the list holds exactly "seal"

  @iso9001-10.2.1b @iso13485-8.5.2a
  Scenario: The list follows a correction of a record at once
    Given the nonconformity "weak seal" was raised about "Pouch P-10" with the title "Weak seal strength on pouch"
    And "mhernandez" corrected the "title" of "seal" to "Pouch label missing" because "Misfiled: the seal was fine"
    When "mhernandez" lists the nonconformities similar to "weak seal"
    Then the list holds no nonconformity

  @qsit-capa-5 @iso13485-8.4
  Scenario: An auditor reads the similar nonconformities as any other list
    Given the nonconformity "weak seal" was raised about "Pouch P-10" with the title "Weak seal strength on pouch"
    When "dbrooks" lists the nonconformities similar to "weak seal"
    Then the list holds exactly "seal"
