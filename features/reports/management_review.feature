Feature: The management review pack gives top management the CAPA inputs of the period
  Top management reviews the quality management system at planned intervals; among the inputs are
  the nonconformities and corrective actions of the period, their trends, whether the actions
  taken were effective, and what is still open or late (ISO 9001:2015 9.3.2 c; ISO 13485:2016
  5.6.2). The pack is made from the records' own history. Statistical control limits (a c-chart)
  separate a month that is out of the ordinary from normal month-to-month variation.

  Background:
    Given a records store for the management review of the last six months

  @iso9001-9.3.2 @iso13485-5.6.2
  Scenario: A month with unusually many nonconformities breaks the control limits
    Given nonconformities detected over the last six months: 2, 3, 2, 3, 2 and 12 of them
    When the quality manager prepares the management review pack of the last six months
    Then the pack counts 2, 3, 2, 3, 2 and 12 nonconformities month by month
    And the pack's control limits are a centre line of 4.00, an upper limit of 10.00 and a lower limit of 0.00
    And the pack names this month as above the control limits, and no other month
    And the dashboard's monthly chart draws the same control limits

  @iso9001-9.3.2 @iso13485-5.6.2
  Scenario: Recurrence, effectiveness, extensions and open corrective actions are reported
    Given three nonconformities on "Pouch P-10" this month, traced to the cause category "machine"
    And their corrective action, owned by "apatel", had its action extended by 7 days and was verified effective
    And another corrective action owned by "apatel" is open
    When the quality manager prepares the management review pack of the last six months
    Then the pack shows 3 nonconformities on "Pouch P-10" recurring for the cause "machine"
    And the pack reports 1 of 1 effectiveness checks as effective, a rate of 100.0 %
    And the pack reports 1 due-date extension adding 7 days
    And the pack shows 2 open corrective actions of "Anil Patel" aged 30 days or less

  @iso9001-9.3.2 @iso13485-5.6.2
  Scenario: A title that imitates the pack's own structure is shown as typed
    Given another corrective action owned by "apatel" titled "## Effectiveness 100 % | <script>alert(1)</script>" is open
    When the quality manager prepares the management review pack of the last six months as Markdown and as HTML
    Then neither pack holds a heading, a table column or a script that the title brought in

  @iso9001-9.3.2 @iso13485-5.6.2
  Scenario: An auditor may read the pack, a reporter may not
    When the auditor prepares the management review pack of the last six months
    Then the pack is prepared
    When the reporter prepares the management review pack of the last six months
    Then the attempt is refused as not permitted
