Feature: Roles decide who may do what
  Every person acts under their own account, and each account holds one or more roles: admin
  manages people, quality triages, approves, verifies and closes, an owner works their own
  corrective actions, a reporter raises and contains nonconformities, an auditor reads
  everything and writes nothing. A step the person's roles do not allow is refused before
  anything is written (21 CFR 11.10(d) and (g)).

  Background:
    Given the quality records store of "Northwind Medical Devices", with its quality team

  @21cfr11.10g
  Scenario Outline: Raising a nonconformity: <user> is <outcome>
    When "<user>" tries to raise a nonconformity
    Then the attempt is "<outcome>"

    Examples:
      | user       | outcome |
      | tokafor    | allowed |
      | mhernandez | allowed |
      | apatel     | refused |
      | dbrooks    | refused |
      | admin      | refused |

  @21cfr11.10g
  Scenario Outline: Work on a nonconformity: <user> may <action>? <outcome>
    Given the nonconformity "crack" stands ready to "<action>"
    When "<user>" tries to "<action>" the record "crack"
    Then the attempt is "<outcome>"

    Examples:
      | action  | user       | outcome |
      | contain | tokafor    | allowed |
      | contain | mhernandez | allowed |
      | contain | apatel     | refused |
      | contain | dbrooks    | refused |
      | assess  | mhernandez | allowed |
      | assess  | tokafor    | refused |
      | assess  | dbrooks    | refused |
      | close   | mhernandez | allowed |
      | close   | tokafor    | refused |
      | close   | admin      | refused |
      | cancel  | mhernandez | allowed |
      | cancel  | tokafor    | refused |
      | reopen  | mhernandez | allowed |
      | reopen  | apatel     | refused |
      | amend   | mhernandez | allowed |
      | amend   | tokafor    | refused |
      | amend   | dbrooks    | refused |

  @21cfr11.10g
  Scenario Outline: Work on a corrective action: <user> may <action>? <outcome>
    Given the corrective action "housing" owned by "apatel" has reached "<state>"
    When "<user>" tries to "<action>" the record "housing"
    Then the attempt is "<outcome>"

    Examples:
      | state        | action      | user       | outcome |
      | open         | investigate | apatel     | allowed |
      | open         | investigate | mhernandez | allowed |
      | open         | investigate | lnguyen    | refused |
      | open         | investigate | tokafor    | refused |
      | investigated | plan        | apatel     | allowed |
      | investigated | plan        | jchen      | allowed |
      | investigated | plan        | lnguyen    | refused |
      | investigated | plan        | dbrooks    | refused |
      | planned      | approve     | mhernandez | allowed |
      | planned      | approve     | apatel     | refused |
      | planned      | approve     | tokafor    | refused |
      | planned      | approve     | dbrooks    | refused |
      | approved     | complete    | lnguyen    | allowed |
      | approved     | complete    | apatel     | allowed |
      | approved     | complete    | mhernandez | refused |
      | approved     | complete    | tokafor    | refused |
      | approved     | extend      | mhernandez | allowed |
      | approved     | extend      | apatel     | refused |
      | implemented  | verify      | rkowalski  | allowed |
      | implemented  | verify      | apatel     | refused |
      | implemented  | verify      | dbrooks    | refused |
      | verified     | close       | mhernandez | allowed |
      | verified     | close       | admin      | refused |
      | verified     | close       | lnguyen    | refused |
      | planned      | cancel      | mhernandez | allowed |
      | planned      | cancel      | apatel     | refused |

  @21cfr11.10g
  Scenario: An auditor reads every record but writes nothing
    Given the corrective action "housing" owned by "apatel" has reached "planned"
    When "dbrooks" tries to "approve" the record "housing"
    Then the attempt is "refused"
    And "dbrooks" can read the record "housing" and its history

  @21cfr11.10g
  Scenario: A deactivated account writes nothing
    Given "admin" deactivated the account "tokafor"
    When "tokafor" tries to raise a nonconformity
    Then the attempt is "refused"

  @21cfr11.10g @21cfr11.10e
  Scenario: A role written into the store without an administrator's signature is not honoured
    Given someone who can write the store has given "tokafor" the role "admin" without an administrator's signature
    When "tokafor" tries to add the user "mallory"
    Then the attempt is "refused"
    And the integrity check of the store reports that role change as signed by no administrator
