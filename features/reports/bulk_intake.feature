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
