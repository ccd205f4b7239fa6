Feature: Reminders and escalation of actions that fall due
  Corrective actions left open beyond their target date are among the findings FDA investigators
  record most often. capa reminds the people concerned by e-mail: the assignee before an action
  falls due; the assignee and the owner of the corrective action once it is late; the whole
  quality team when it stays late; and the quality team when every action of a corrective
  action is done and its effectiveness awaits verification. Each reminder goes to each person
  once for each threshold, and capa records what it sent, to whom and when. Moving a due date
  through a recorded extension (R5) makes the reminders of that action due again.

  Background:
    Given the quality records store of "Northwind Medical Devices", with its quality team
    And everyone of the quality team but "tokafor" has an e-mail address at "northwind.example"
    And the mail server of "Northwind Medical Devices" is running

  @iso9001-10.2.1c @iso13485-8.5.2d
  Scenario: The assignee is reminded before an action falls due
    Given the corrective action "housing" owned by "apatel" has the action "Sort lot L2311" assigned to "lnguyen", due in 3 days
    When "mhernandez" sends the reminders that are due
    Then "lnguyen" received the "due soon" reminder about action "A1" of "housing"
    And nobody else received a message
    And each reminder sent is recorded with its recipient, its record and the time it was sent

  @iso9001-10.2.1c @iso13485-8.5.2d
  Scenario: A late action is reported to its assignee and to the owner of the corrective action
    Given the corrective action "housing" owned by "apatel" has the action "Recalibrate torque driver" assigned to "lnguyen", due 2 days ago
    When "mhernandez" sends the reminders that are due
    Then "lnguyen" received the "overdue" reminder about action "A1" of "housing"
    And "apatel" received the "overdue" reminder about action "A1" of "housing"
    And nobody else received a message

  @iso9001-10.2.1c @iso13485-8.5.2d
  Scenario: An action late for two weeks or more is escalated to the whole quality team
    Given the corrective action "housing" owned by "apatel" has the action "Requalify the resin supplier" assigned to "lnguyen", due 20 days ago
    When "mhernandez" sends the reminders that are due
    Then "mhernandez" received the "escalation" reminder about action "A1" of "housing"
    And "jchen" received the "escalation" reminder about action "A1" of "housing"
    And "rkowalski" received the "escalation" reminder about action "A1" of "housing"
    And "lnguyen" received the "overdue" reminder about action "A1" of "housing"

  @iso9001-10.2.1d @iso13485-8.5.2f
  Scenario: The quality team is asked to verify a corrective action whose actions are all done
    Given the corrective action "housing" owned by "apatel" has reached "implemented"
    When "mhernandez" sends the reminders that are due
    Then "mhernandez" received the "awaiting verification" reminder about "housing"
    And "jchen" received the "awaiting verification" reminder about "housing"
    And "rkowalski" received the "awaiting verification" reminder about "housing"
    And nobody else received a message

  @iso9001-10.2.1c @iso13485-8.5.2d
  Scenario: A reminder is sent only once
    Given the corrective action "housing" owned by "apatel" has the action "Recalibrate torque driver" assigned to "lnguyen", due 2 days ago
    And "mhernandez" sent the reminders that were due
    When "mhernandez" sends the reminders that are due
    Then nobody received a message
    And nothing was recorded

  @R5
  Scenario: An extension of the due date makes the reminders of its action due again
    Given the corrective action "housing" owned by "apatel" has the action "Recalibrate torque driver" assigned to "lnguyen", due 3 days ago
    And "mhernandez" sent the reminders that were due
    And "mhernandez" extended action "A1" of "housing" to 2 days from now because "Calibration lab booked for this week"
    When "mhernandez" sends the reminders that are due
    Then "lnguyen" received the "due soon" reminder about action "A1" of "housing"
    And nobody else received a message

  @iso9001-10.2.1c @iso13485-8.5.2d
  Scenario: A preview lists what would be sent, and neither sends nor records anything
    Given the corrective action "housing" owned by "apatel" has the action "Recalibrate torque driver" assigned to "lnguyen", due 2 days ago
    When "mhernandez" previews the reminders that are due
    Then the preview lists the "overdue" reminder to "lnguyen" about action "A1" of "housing"
    And nobody received a message
    And nothing was recorded

  Scenario: A person without an e-mail address is reported, not silently forgotten
    Given the corrective action "housing" owned by "apatel" has the action "Tidy the label store" assigned to "tokafor", due in 2 days
    When "mhernandez" sends the reminders that are due
    Then the "due soon" reminder to "tokafor" is reported as skipped for want of an e-mail address
    And nobody received a message
    And nothing was recorded

  Scenario: Only quality and administrators send reminders
    Given the corrective action "housing" owned by "apatel" has the action "Recalibrate torque driver" assigned to "lnguyen", due 2 days ago
    When "apatel" sends the reminders that are due
    Then the command is refused as not permitted
    And nothing was recorded
    And nobody received a message

  Scenario: People keep their own e-mail address up to date
    Given the corrective action "housing" owned by "apatel" has the action "Sort lot L2311" assigned to "lnguyen", due in 3 days
    And "lnguyen" changed their own e-mail address to "linh.nguyen@northwind.example"
    When "mhernandez" sends the reminders that are due
    Then the "due soon" reminder about action "A1" of "housing" went to "linh.nguyen@northwind.example"

  Scenario: Only an administrator changes someone else's e-mail address
    When "apatel" sets the e-mail address of "lnguyen" to "someone@elsewhere.example"
    Then the command is refused as not permitted
    And nothing was recorded

  Scenario: An e-mail address that would add hidden recipients is refused
    When "admin" sets the e-mail address of "lnguyen" to "lnguyen@northwind.example" followed by the line "Bcc: attacker@evil.example"
    Then the command is refused as invalid input
    And nothing was recorded
