Feature: The life of a corrective action
  A corrective action is opened for assessed nonconformities that need one. Its owner finds the
  root cause and plans the actions; quality approves the plan before anyone acts on it; the
  people assigned complete their actions with a note and evidence. Due dates move only through
  a recorded extension with a reason (R5). The system enforces the order of these steps (R7).

  Background:
    Given the quality records store of "Northwind Medical Devices", with its quality team
    And the nonconformity "crack" was assessed as needing a corrective action

  @qsit-capa-7
  Scenario: Opening a corrective action for an assessed nonconformity links the two
    When "mhernandez" opens the corrective action "housing" for "crack" with owner "apatel"
    Then the corrective action "housing" is "open"
    And the corrective action "housing" is owned by "apatel"
    And the nonconformity "crack" is "linked"
    And "crack" and "housing" are linked to each other

  @qsit-capa-7
  Scenario: A second nonconformity with the same cause joins the open corrective action
    Given the corrective action "housing" owned by "apatel" was opened for "crack"
    And the nonconformity "resin" was assessed as needing a corrective action
    When "mhernandez" links "resin" to "housing"
    Then the nonconformity "resin" is "linked"
    And "resin" and "housing" are linked to each other
    And "crack" and "housing" are linked to each other

  @R7 @21cfr11.10f
  Scenario: A corrective action cannot be opened for a nonconformity not yet assessed
    Given the nonconformity "seal" was raised
    When "mhernandez" opens the corrective action "pouch" for "seal" with owner "apatel"
    Then the command is refused under rule "R7"
    And nothing was recorded
    And the nonconformity "seal" is "open"

  @R7 @21cfr11.10f @qsit-capa-7
  Scenario: A corrective action cannot be opened for a nonconformity assessed as needing none
    Given the nonconformity "records" was assessed as needing no corrective action
    When "mhernandez" opens the corrective action "filing" for "records" with owner "apatel"
    Then the command is refused under rule "R7"
    And nothing was recorded
    And the nonconformity "records" is "assessed"

  Scenario: The owner of a corrective action must be a person of the quality system
    When "mhernandez" opens the corrective action "housing" for "crack" with owner "nobody"
    Then the command is refused as not found
    And nothing was recorded
    And the nonconformity "crack" is "assessed"

  @iso9001-10.2.1b @qsit-capa-6 @iso13485-8.5.2b
  Scenario: The root cause is found by asking why until the cause is reached
    Given the corrective action "housing" owned by "apatel" was opened for "crack"
    When "apatel" records a "5 whys" analysis of "housing" with the whys below: root cause "Worn gate insert on mould M-17 gives thin boss walls", category "machine"
      | The boss cracks under screw torque                      |
      | Hoop stress at the boss exceeds the material's limit    |
      | Wall thickness at the boss is below drawing minimum     |
      | The mould gate insert is worn and short-shots the boss  |
    Then the corrective action "housing" is "investigated"
    And the current root cause of "housing" is "Worn gate insert on mould M-17 gives thin boss walls", category "machine", found by "5 whys"
    And the why chain of "housing" reads:
      | The boss cracks under screw torque                      |
      | Hoop stress at the boss exceeds the material's limit    |
      | Wall thickness at the boss is below drawing minimum     |
      | The mould gate insert is worn and short-shots the boss  |

  @iso9001-10.2.1b @qsit-capa-6 @iso13485-8.5.2b
  Scenario: A 5-whys analysis without a single why is refused
    Given the corrective action "housing" owned by "apatel" was opened for "crack"
    When "apatel" records a "5 whys" analysis of "housing": root cause "Worn gate insert", category "machine"
    Then the command is refused as invalid input
    And nothing was recorded
    And the corrective action "housing" is "open"

  @iso9001-10.2.1b @qsit-capa-6 @iso13485-8.5.2b
  Scenario Outline: A root cause names a recognised method and cause category
    Given the corrective action "housing" owned by "apatel" was opened for "crack"
    When "apatel" records a "<method>" analysis of "housing": root cause "Worn gate insert", category "<category>"
    Then the command is refused as invalid input
    And nothing was recorded

    Examples:
      | method      | category    |
      | gut feeling | machine     |
      | ishikawa    | bad luck    |

  @iso9001-10.2.1b @iso9001-10.2.2a @iso13485-8.5.2b
  Scenario: A repeated analysis becomes the current one and the earlier one is kept
    Given the corrective action "housing" owned by "apatel" has reached "investigated"
    When "apatel" records a "fault tree" analysis of "housing": root cause "Resin moisture above 0.02 % at moulding", category "material"
    Then the corrective action "housing" is "investigated"
    And the current root cause of "housing" is "Resin moisture above 0.02 % at moulding", category "material", found by "fault tree"
    And the analyses of "housing", oldest first, are:
      | iteration | method     | root cause                                          | by     |
      | 1         | ishikawa   | Worn gate insert on mould M-17 gives thin boss walls | apatel |
      | 1         | fault tree | Resin moisture above 0.02 % at moulding             | apatel |

  @iso9001-10.2.1c @iso13485-8.5.2d
  Scenario: The owner plans the actions, each with an assignee, a due date and a type
    Given the corrective action "housing" owned by "apatel" has reached "investigated"
    When "apatel" plans the "correction" action "Sort and scrap housings from lot L2311" for "housing", assigned to "lnguyen" and due in 7 days
    And "apatel" plans the "corrective" action "Replace gate insert on mould M-17" for "housing", assigned to "apatel" and due in 21 days
    Then the corrective action "housing" is "planned"
    And the plan of "housing" lists:
      | action | text                                   | assignee | type       | due in days | state | iteration |
      | A1     | Sort and scrap housings from lot L2311 | lnguyen  | correction | 7           | open  | 1         |
      | A2     | Replace gate insert on mould M-17      | apatel   | corrective | 21          | open  | 1         |

  @qsit-capa-8
  Scenario: Quality approves the plan under a signature
    Given the corrective action "housing" owned by "apatel" has reached "planned"
    When "mhernandez" approves the plan of "housing"
    Then the corrective action "housing" is "approved"
    And the plan of "housing" is approved by "mhernandez", signed with meaning "approval"

  @qsit-capa-8 @R7 @iso13485-8.5.3
  Scenario: An action added after approval voids the approval until the plan is approved again
    Given the corrective action "housing" owned by "apatel" has reached "approved"
    When "apatel" plans the "preventive" action "Add dryer residence time to the moulding control plan" for "housing", assigned to "apatel" and due in 30 days
    Then the corrective action "housing" is "planned"
    And the approval of "housing" by "mhernandez" is void
    When "apatel" completes action "A1" of "housing" noting "Lot sorted"
    Then the command is refused under rule "R7"
    And nothing was recorded
    When "mhernandez" approves the plan of "housing"
    Then the corrective action "housing" has 2 approvals, the earliest void
    And the plan of "housing" is approved by "mhernandez", signed with meaning "approval"

  @iso9001-10.2.1c @qsit-capa-9 @iso13485-8.5.2d
  Scenario: Completing an action records who did it, when, the note and the evidence
    Given the corrective action "housing" owned by "apatel" was opened for "crack"
    And the corrective action "housing" has since reached "investigated"
    And "apatel" planned the "correction" action "Sort and scrap housings from lot L2311" for "housing", assigned to "lnguyen" and due in 7 days
    And "apatel" planned the "corrective" action "Replace gate insert on mould M-17" for "housing", assigned to "apatel" and due in 21 days
    And "mhernandez" approved the plan of "housing"
    And the evidence file "sort-record.csv" containing "H-001 ok; H-002 scrapped; H-003 ok"
    When "lnguyen" completes action "A1" of "housing" with the evidence file "sort-record.csv", noting "312 housings sorted, 27 scrapped"
    Then action "A1" of "housing" was done by "lnguyen", noting "312 housings sorted, 27 scrapped"
    And action "A1" of "housing" keeps the evidence file "sort-record.csv" unaltered
    And action "A2" of "housing" is still open
    And the corrective action "housing" is "approved"

  @iso9001-10.2.1c @qsit-capa-9 @iso13485-8.5.2d
  Scenario: The evidence kept with an action comes back out exactly, and an altered file does not
    Given the corrective action "housing" owned by "apatel" was opened for "crack"
    And the corrective action "housing" has since reached "investigated"
    And "apatel" planned the "correction" action "Sort and scrap housings from lot L2311" for "housing", assigned to "lnguyen" and due in 7 days
    And "mhernandez" approved the plan of "housing"
    And the evidence file "sort-record.csv" containing "H-001 ok; H-002 scrapped; H-003 ok"
    And "lnguyen" completed action "A1" of "housing" with the evidence file "sort-record.csv", noting "312 housings sorted, 27 scrapped"
    When "dbrooks" takes the evidence file "sort-record.csv" of "housing" back out
    Then the file taken out is "sort-record.csv" byte for byte
    When someone with database access rewrites the kept file "sort-record.csv"
    And "dbrooks" takes the evidence file "sort-record.csv" of "housing" back out
    Then the command is refused as an integrity failure

  @iso9001-10.2.1c @qsit-capa-9 @iso13485-8.5.2d
  Scenario: When the last open action is done the corrective action is implemented
    Given the corrective action "housing" owned by "apatel" was opened for "crack"
    And the corrective action "housing" has since reached "investigated"
    And "apatel" planned the "correction" action "Sort and scrap housings from lot L2311" for "housing", assigned to "lnguyen" and due in 7 days
    And "apatel" planned the "corrective" action "Replace gate insert on mould M-17" for "housing", assigned to "apatel" and due in 21 days
    And "mhernandez" approved the plan of "housing"
    And "lnguyen" completed action "A1" of "housing" noting "312 housings sorted, 27 scrapped"
    When "apatel" completes action "A2" of "housing" noting "Insert replaced; first-article wall 1.52 mm"
    Then the corrective action "housing" is "implemented"
    And action "A2" of "housing" was done by "apatel", noting "Insert replaced; first-article wall 1.52 mm"

  @qsit-capa-9
  Scenario: An action cannot be completed without a note
    Given the corrective action "housing" owned by "apatel" has reached "approved"
    When "lnguyen" completes action "A1" of "housing" without a note
    Then the command is refused as invalid input
    And nothing was recorded
    And action "A1" of "housing" is still open

  @21cfr11.10g
  Scenario: Only the assignee or the owner completes an action
    Given the corrective action "housing" owned by "apatel" was opened for "crack"
    And the corrective action "housing" has since reached "investigated"
    And "apatel" planned the "correction" action "Sort and scrap housings from lot L2311" for "housing", assigned to "lnguyen" and due in 7 days
    And "mhernandez" approved the plan of "housing"
    When "jchen" completes action "A1" of "housing" noting "Done, I think"
    Then the command is refused as not permitted
    And nothing was recorded
    And action "A1" of "housing" is still open

  @R5
  Scenario: A due date moves only through an extension that states a reason
    Given the corrective action "housing" owned by "apatel" was opened for "crack"
    And the corrective action "housing" has since reached "investigated"
    And "apatel" planned the "corrective" action "Replace gate insert on mould M-17" for "housing", assigned to "apatel" and due in 14 days
    And "mhernandez" approved the plan of "housing"
    When "mhernandez" extends action "A1" of "housing" by 14 days because "Replacement insert delivery slipped to the 20th"
    Then action "A1" of "housing" is due in 28 days
    And the due date of action "A1" of "housing" was moved by "mhernandez" from 14 to 28 days from today because "Replacement insert delivery slipped to the 20th"
    And the corrective action "housing" is "approved"

  @R5
  Scenario Outline: A due date cannot be moved to the same or an earlier day
    Given the corrective action "housing" owned by "apatel" was opened for "crack"
    And the corrective action "housing" has since reached "investigated"
    And "apatel" planned the "corrective" action "Replace gate insert on mould M-17" for "housing", assigned to "apatel" and due in 14 days
    And "mhernandez" approved the plan of "housing"
    When "mhernandez" extends action "A1" of "housing" by <days> days because "Keeps the auditors happy"
    Then the command is refused under rule "R5"
    And nothing was recorded
    And action "A1" of "housing" is due in 14 days

    Examples:
      | days |
      | 0    |
      | -3   |

  @R7 @21cfr11.10f
  Scenario Outline: Steps out of order are refused and nothing is recorded
    Given the corrective action "housing" owned by "apatel" has reached "<state>"
    When <step>
    Then the command is refused under rule "R7"
    And nothing was recorded
    And the corrective action "housing" is "<state>"

    Examples:
      | state        | step                                                                                                                   |
      | open         | "apatel" plans the "corrective" action "Replace gate insert" for "housing", assigned to "apatel" and due in 14 days |
      | investigated | "mhernandez" approves the plan of "housing"                                                                             |
      | planned      | "lnguyen" completes action "A1" of "housing" noting "Sorted"                                                            |
      | approved     | "rkowalski" verifies "housing" as effective: "No recurrence"                                                            |
      | planned      | "mhernandez" extends action "A1" of "housing" by 7 days because "Supplier delay"                                        |
      | implemented  | "apatel" records a "ishikawa" analysis of "housing": root cause "Another cause", category "method"                     |
