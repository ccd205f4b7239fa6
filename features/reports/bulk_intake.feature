Feature: Taking in nonconformities in bulk from a spreadsheet
  Complaints and findings often arrive as a spreadsheet exported from another system. Every row is
  checked before anything is recorded, and the same file taken in twice records nothing twice.

  Background:
    Given an empty records store for bulk intake

  Scenario: A file of valid rows is taken in once, however often it is imported
    When the reporter takes in a file of 3 complaints with their complaint numbers
    And the reporter takes in the same file again
    Then the store holds 3 nonconformities, one for each complaint number

  @qsit-capa-4
  Scenario: One invalid row refuses the whole file and records nothing
    When the reporter takes in a file of 3 complaints where row 3 names the source "canteen"
    Then the intake is refused, naming row 3 and its source column
    And the store holds no nonconformity

  @qsit-capa-4
  Scenario: A date that could be read two ways is refused, never guessed
    When the reporter takes in a spreadsheet of complaints detected on "01/12/2025"
    Then the intake is refused, naming both readings: 1 December 2025 and 12 January 2025
    And the store holds no nonconformity

  @qsit-capa-4
  Scenario: Once the reporter says how the spreadsheet writes dates, every date reads that way
    When the reporter takes in a spreadsheet of complaints detected on "01/12/2025" written "DD/MM/YYYY"
    Then every nonconformity taken in was detected on 2025-12-01
