Feature: Cancelling, reopening and correcting records
  Nothing is deleted and nothing is edited in place. A record raised in error is cancelled, a
  closed record is reopened, and a wrong value is corrected, each time by a new entry in the
  record's history that states the reason; the value it replaced stays visible (R6; EU GMP
  Annex 11 §9; 21 CFR 11.10(e)).

  Background:
    Given the quality records store of "Northwind Medical Devices", with its quality team

  @R6 @21cfr11.10e
  Scenario: A nonconformity raised in error is cancelled with a reason
    Given the nonconformity "duplicate" was raised
    When "mhernandez" cancels the nonconformity "duplicate" because "Duplicate of the complaint raised yesterday"
    Then the nonconformity "duplicate" is "cancelled"
    And the cancellation of "duplicate" by "mhernandez" gives the reason "Duplicate of the complaint raised yesterday"

  @R6
  Scenario: Cancelling without a reason is refused
    Given the nonconformity "duplicate" was raised
    When "mhernandez" cancels the nonconformity "duplicate" without a reason
    Then the command is refused under rule "R6"
    And nothing was recorded
    And the nonconformity "duplicate" is "open"

  @R6 @21cfr11.10e @iso9001-10.2.2a
  Scenario: A closed nonconformity is reopened with a reason and its history stays intact
    Given the nonconformity "records" was assessed as needing no corrective action
    And the nonconformity "records" was closed without a corrective action
    When "mhernandez" reopens the nonconformity "records" because "Same calibration gap found on TD-15"
    Then the nonconformity "records" is "open"
    And the nonconformity "records" is not assessed
    When the auditor reads the history of "records"
    Then the history lists, oldest first:
      | version | event    | by         | reason                              |
      | 1       | Raised   | tokafor    |                                     |
      | 2       | Assessed | mhernandez |                                     |
      | 3       | Closed   | mhernandez |                                     |
      | 4       | Reopened | mhernandez | Same calibration gap found on TD-15 |

  @R6
  Scenario: A cancelled nonconformity is reopened with a reason
    Given the nonconformity "duplicate" was raised
    And the nonconformity "duplicate" was cancelled because "Thought to be a duplicate"
    When "mhernandez" reopens the nonconformity "duplicate" because "Different lot: not a duplicate after all"
    Then the nonconformity "duplicate" is "open"

  @R6
  Scenario: Reopening without a reason is refused
    Given the nonconformity "duplicate" was raised
    And the nonconformity "duplicate" was cancelled because "Thought to be a duplicate"
    When "mhernandez" reopens the nonconformity "duplicate" without a reason
    Then the command is refused under rule "R6"
    And nothing was recorded
    And the nonconformity "duplicate" is "cancelled"

  @R7 @21cfr11.10f
  Scenario: Only a closed or cancelled nonconformity can be reopened
    Given the nonconformity "crack" was raised
    When "mhernandez" reopens the nonconformity "crack" because "Just in case"
    Then the command is refused under rule "R7"
    And nothing was recorded

  @R6 @21cfr11.10e
  Scenario: A corrective action opened in error is cancelled with a reason
    Given the corrective action "housing" owned by "apatel" has reached "investigated"
    When "mhernandez" cancels the corrective action "housing" because "Opened against the wrong mould"
    Then the corrective action "housing" is "cancelled"
    And the cancellation of "housing" by "mhernandez" gives the reason "Opened against the wrong mould"

  @R6 @21cfr11.10e
  Scenario: A corrective action is cancelled with a reason and reopened for investigation
    Given the corrective action "housing" owned by "apatel" has reached "planned"
    And the corrective action "housing" was cancelled because "Opened against the wrong mould"
    When "mhernandez" reopens the corrective action "housing" because "It was the right mould after all"
    Then the corrective action "housing" is "investigated"
    And the analyses of "housing", oldest first, are:
      | iteration | method   | root cause                                           | by     |
      | 1         | ishikawa | Worn gate insert on mould M-17 gives thin boss walls | apatel |

  @R6
  Scenario: Reopening a corrective action without a reason is refused
    Given the corrective action "housing" owned by "apatel" has reached "planned"
    And the corrective action "housing" was cancelled because "Opened against the wrong mould"
    When "mhernandez" reopens the corrective action "housing" without a reason
    Then the command is refused under rule "R6"
    And nothing was recorded
    And the corrective action "housing" is "cancelled"

  @R6 @annex11-9 @21cfr11.10e
  Scenario: A correction keeps the old value visible in the history
    Given a "major" nonconformity "crack" was raised
    When "mhernandez" corrects the "severity" of "crack" to "critical" because "Patient contact confirmed by the complaint follow-up"
    Then the nonconformity "crack" records:
      | severity | critical |
    And the nonconformity "crack" is "open"
    When the auditor reads the history of "crack"
    Then the history shows the "severity" changed from "major" to "critical" by "mhernandez" because "Patient contact confirmed by the complaint follow-up"
    When the auditor views "crack" as it stood at version 1
    Then the view shows the "severity" as "major"

  @R6 @annex11-9
  Scenario Outline: Every correctable field keeps its old value in the history
    Given the nonconformity "crack" was raised
    When "mhernandez" corrects the "<field>" of "crack" to "<new>" because "Typing error at intake"
    Then the nonconformity "crack" records:
      | <field> | <new> |
    When the auditor reads the history of "crack"
    Then the history shows the "<field>" changed from "<old>" to "<new>" by "mhernandez" because "Typing error at intake"

    Examples:
      | field       | old                                                          | new                      |
      | title       | Crack found at final inspection                              | Cracked housing at B2    |
      | description | Crack seen on units of lot L2311 at final inspection.        | Crack at screw boss B2   |
      | product     | IP-200 housing                                               | IP-250 housing           |
      | lot         | L2311                                                        | L2312                    |
      | source      | process                                                      | product                  |

  @R6 @annex11-9
  Scenario: A correction without a reason is refused and the value stands
    Given a "major" nonconformity "crack" was raised
    When "mhernandez" corrects the "severity" of "crack" to "critical" without a reason
    Then the command is refused under rule "R6"
    And nothing was recorded
    And the nonconformity "crack" records:
      | severity | major |

  @R8 @21cfr11.10e
  Scenario: Who reported a nonconformity cannot be corrected
    Given the nonconformity "crack" was raised
    When "mhernandez" corrects the "reported by" of "crack" to "mhernandez" because "I found it first"
    Then the command is refused as invalid input
    And nothing was recorded
    And the nonconformity "crack" records:
      | reported by | tokafor |

  @R7 @21cfr11.10f
  Scenario: A closed nonconformity is reopened before it is corrected
    Given the nonconformity "records" was assessed as needing no corrective action
    And the nonconformity "records" was closed without a corrective action
    When "mhernandez" corrects the "title" of "records" to "Calibration record missing for TD-14" because "Clearer title"
    Then the command is refused under rule "R7"
    And nothing was recorded
