Feature: Raising and containing a nonconformity
  Anyone who finds a problem records it at once, and the first reaction to it (what was done to
  control the affected product and deal with the consequences) is recorded with it, saying who
  did what and when. ISO 9001:2015 10.2.1 a asks the organisation to react to the
  nonconformity, take action to control and correct it, and deal with the consequences.

  Background:
    Given the quality records store of "Northwind Medical Devices", with its quality team

  @iso9001-10.2.1a @R8 @qsit-capa-2 @iso13485-8.2.2 @iso13485-8.5.2a
  Scenario: A reporter raises a nonconformity from a customer complaint
    When "tokafor" raises the nonconformity "crack":
      | title              | Cracked housing on infusion pump IP-200                         |
      | description        | Customer reports a hairline crack at screw boss B2 after weeks |
      | source             | customer complaint                                              |
      | severity           | major                                                           |
      | product            | IP-200 housing                                                  |
      | lot                | L2311                                                           |
      | external reference | COMP-2026-0142                                                  |
      | detected on        | 3 days ago                                                      |
    Then the nonconformity "crack" is "open"
    And the nonconformity "crack" is number "0001" of this year
    And the nonconformity "crack" was reported by "tokafor" during this scenario
    And the nonconformity "crack" records:
      | title              | Cracked housing on infusion pump IP-200 |
      | source             | customer complaint                      |
      | severity           | major                                   |
      | product            | IP-200 housing                          |
      | lot                | L2311                                   |
      | external reference | COMP-2026-0142                          |
      | detected on        | 3 days ago                              |

  @iso9001-10.2.1a
  Scenario: A nonconformity found today needs no date of detection
    When "tokafor" raises the nonconformity "seal":
      | title       | Seal strength below limit on pouch line 3         |
      | description | 12 of 50 sampled pouches below 8 N peel strength  |
      | source      | process                                           |
      | severity    | critical                                          |
    Then the nonconformity "seal" records:
      | detected on | today |
      | product     |       |
      | lot         |       |

  @qsit-capa-2
  Scenario Outline: Every source of quality problems is recognised
    When "tokafor" raises the nonconformity "finding":
      | title       | Finding from <source> |
      | description | Details of the finding |
      | source      | <source>               |
      | severity    | minor                  |
    Then the nonconformity "finding" records:
      | source | <source> |

    Examples:
      | source                |
      | customer complaint    |
      | internal audit        |
      | external audit        |
      | supplier              |
      | process               |
      | product               |
      | regulatory inspection |
      | other                 |

  @qsit-capa-4
  Scenario Outline: An incomplete or invalid nonconformity is refused and nothing is recorded
    When "tokafor" raises the nonconformity "bad":
      | title       | <title>       |
      | description | <description> |
      | source      | <source>      |
      | severity    | <severity>    |
      | detected on | <detected> |
    Then the command is refused as invalid input
    And nothing was recorded

    Examples:
      | title        | description        | source   | severity     | detected    |
      |              | Found at packing   | process  | minor        | today       |
      | Loose screw  |                    | process  | minor        | today       |
      | Loose screw  | Found at packing   | hearsay  | minor        | today       |
      | Loose screw  | Found at packing   | process  | catastrophic | today       |
      | Loose screw  | Found at packing   | process  | minor        | tomorrow    |

  Scenario: Numbers run in sequence within the year and are never reused
    Given the nonconformity "first" was raised
    And the nonconformity "first" was cancelled because "Raised twice by mistake"
    When "tokafor" raises the nonconformity "second":
      | title       | Label smudged on carton |
      | description | Seen at dispatch        |
      | source      | product                 |
      | severity    | minor                   |
    Then the nonconformity "first" is number "0001" of this year
    And the nonconformity "second" is number "0002" of this year

  @iso9001-10.2.1a @qsit-capa-6 @R8
  Scenario: Containment is recorded with the disposition of the affected product
    Given the nonconformity "crack" was raised
    When "mhernandez" records the containment of "crack": "Lot L2311 quarantined in finished goods", disposition "quarantine"
    Then the nonconformity "crack" is "contained"
    And the containment of "crack" lists, each entry time-stamped in UTC:
      | action                                  | disposition | by         |
      | Lot L2311 quarantined in finished goods | quarantine  | mhernandez |

  @iso9001-10.2.1a @qsit-capa-6
  Scenario: Containment records where it was done
    Given the nonconformity "crack" was raised
    When "mhernandez" records the containment of "crack": "Stock on hand sorted", disposition "quarantine", at "Finished goods warehouse, bay 4"
    Then the nonconformity "crack" is "contained"
    And the containment of "crack" lists, each entry time-stamped in UTC:
      | action               | disposition | location                        | by         |
      | Stock on hand sorted | quarantine  | Finished goods warehouse, bay 4 | mhernandez |

  @iso9001-10.2.1a
  Scenario: Further containment adds to what was done before
    Given the nonconformity "crack" was raised
    And the nonconformity "crack" was contained
    When "mhernandez" records the containment of "crack": "27 cracked housings scrapped after sorting", disposition "scrap"
    Then the nonconformity "crack" is "contained"
    And the containment of "crack" lists, each entry time-stamped in UTC:
      | action                                     | disposition | by         |
      | Affected lot moved to the quarantine cage  | quarantine  | tokafor    |
      | 27 cracked housings scrapped after sorting | scrap       | mhernandez |

  @iso9001-10.2.1a
  Scenario: A disposition outside the defined list is refused
    Given the nonconformity "crack" was raised
    When "mhernandez" records the containment of "crack": "Lot L2311 set aside", disposition "throw away"
    Then the command is refused as invalid input
    And nothing was recorded
    And the nonconformity "crack" is "open"

  @iso9001-10.2.1a
  Scenario: Containment with no stated action is refused
    Given the nonconformity "crack" was raised
    When "mhernandez" records a containment of "crack" without saying what was done
    Then the command is refused as invalid input
    And nothing was recorded
    And the nonconformity "crack" is "open"
