@iso9001-10.2.2a
Feature: The 8D report of a corrective action
  A quality manager hands an auditor one document per corrective action: the team, the problem,
  containment, root cause, the chosen actions, their implementation, prevention and closure,
  with every electronic signature readable on the page.

  Background:
    Given a records store where a housing crack was corrected, verified and closed

  @21cfr11.50
  Scenario: Every signature in the report shows printed name, UTC time and meaning
    When the quality manager prints the 8D report of the corrective action
    Then the report has the sections D1 to D8 in order
    And the report shows every signature of the corrective action with printed name, UTC time and meaning

  Scenario: The report tells the whole story of the problem
    When the quality manager prints the 8D report of the corrective action
    Then the report names the containment "Lot L2311 quarantined"
    And the report names the root cause "Worn gate insert on mould M-17"
    And the report names the preventive action "Add insert wear to the maintenance plan"

  @21cfr11.50
  Scenario: Text typed into a record cannot pass for a section or a signature
    Given a nonconformity whose description imitates a closure section and a signature
    When the quality manager prints the 8D report of that nonconformity
    Then the report has the sections D1 to D8 in order
    And the only signature in the report is the genuine closure of that nonconformity
    And the report shows the description exactly as it was typed

  @21cfr11.50
  Scenario: The printed report keeps every line and every signature on the page
    When the quality manager prints the 8D report of the corrective action as PDF
    Then every word of the PDF lies inside the page margins
    And every signature in the PDF is printed whole with printed name, UTC time and meaning
