Feature: Trends and recurrence across the sources of quality data
  Quality data is analysed for unfavourable trends, so that preventive action can be taken
  before a problem grows, and across every source, so that a problem that keeps coming back is
  seen even when each report of it arrives by a different route.

  @qsit-capa-3 @iso13485-8.4
  Scenario: Nonconformities raised and closed are trended month by month
    Given nonconformities detected 2 months ago, 1 month ago and this month: 3, 1 and 2 of them
    And one of this month's nonconformities was closed without a corrective action
    When the quality manager produces the dashboard
    Then the dashboard's monthly trend reads:
      | month        | raised | closed |
      | 2 months ago | 3      | 0      |
      | 1 month ago  | 1      | 0      |
      | this month   | 2      | 1      |
    And every other month of the last twelve reads zero

  @qsit-capa-5 @iso13485-8.4
  Scenario: A problem reported through different sources is recognised as one recurring problem
    Given a cracked "IP-200 housing" reported by a customer complaint, an internal audit and a supplier
    And a seal failure on "Pouch P-10" reported by a customer complaint
    And the three housing cracks were traced to the cause category "machine"
    When the quality manager produces the dashboard
    Then the dashboard shows 3 nonconformities on "IP-200 housing" recurring for the cause "machine"
    And the Pareto by cause category counts 3 nonconformities for "machine"
    And the Pareto by source counts 2 from "customer-complaint", 1 from "internal-audit" and 1 from "supplier"
