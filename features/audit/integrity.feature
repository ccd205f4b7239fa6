Feature: An auditor proves the audit trail intact, offline, without trusting the database
  Every stored event is sealed into a hash tree; the store's key signs checkpoints of that tree.
  An auditor recomputes every event from the stored bytes, checks every signed checkpoint, and
  compares with a checkpoint they kept themselves, so that a changed, deleted, inserted or
  reordered event, a forged checkpoint, or a rewritten and re-signed history is found and
  named (21 CFR 11.10(e); EU GMP Annex 11 §9).

  Background:
    Given an audited store for "Northwind Medical Devices" with some quality records
    And the store's owner has signed a checkpoint

  @21cfr11.10e @annex11-9
  Scenario: A clean store verifies, also after further work
    When the auditor verifies the store
    Then the audit trail is intact
    Given more nonconformities were raised since
    When the auditor verifies the store
    Then the audit trail is intact

  @21cfr11.10e @annex11-9
  Scenario Outline: Tampering with the database is detected and located
    Given someone with database access <tampering>
    When the auditor verifies the store
    Then the verification fails and names position <position> as the first damaged event

    Examples:
      | tampering                                             | position |
      | changed one byte of the 6th event                     | 6        |
      | deleted the 7th event                                 | 7        |
      | deleted the last event                                | last     |
      | inserted an event before the 5th event                | 5        |
      | swapped the 5th and the 9th events                    | 5        |

  @21cfr11.10e @annex11-9
  Scenario: A forged checkpoint is detected
    Given someone edited the size of the signed checkpoint
    When the auditor verifies the store
    Then the verification fails because a checkpoint is forged

  @21cfr11.10e @annex11-9
  Scenario: A checkpoint log moved out of sight fails the verification until the auditor finds it
    Given someone moved the checkpoint log away
    When the auditor verifies the store
    Then the verification fails because the checkpoint log is missing
    When the auditor verifies the store with the checkpoint log where it was moved
    Then the audit trail is intact

  @21cfr11.10e @annex11-9
  Scenario: History rewritten and re-signed is caught by the checkpoint the auditor kept
    Given the auditor kept a copy of the latest checkpoint
    And someone rewrote an early event, rebuilt the ledger and signed a new checkpoint
    When the auditor verifies the store against the kept checkpoint
    Then the verification fails because the history before the kept checkpoint was rewritten

  @21cfr11.10e @annex11-9
  Scenario: An exported evidence bundle verifies offline, and a tampered copy does not
    When the auditor exports an evidence bundle
    Then the bundle verifies without the store
    And the standalone verifier accepts the bundle
    Given someone changed one byte of an event in the bundle
    Then the bundle no longer verifies

  @21cfr11.10e @annex11-9
  Scenario: A bundle whose readable fields were edited does not verify
    When the auditor exports an evidence bundle
    Given someone changed the title and the actor of a raised nonconformity in the bundle
    Then the bundle no longer verifies because what it shows is not what was stored

  @21cfr11.10e @21cfr11.70
  Scenario: A signed record replayed as the signer saw it
    Given the nonconformity "burr" was closed with a signature
    When the auditor views "burr" as it stood just before its signature
    Then the view is the version the signature names
    And the signature's content digest is that of the view

  @21cfr11.10e @annex11-9
  Scenario: A witness kept by the QA head will not vouch for a rewritten history
    Given the QA head's witness has cosigned the latest checkpoint
    And someone rewrote an early event, rebuilt the ledger and signed a new checkpoint
    When the store's owner asks the witness to cosign the new checkpoint
    Then the witness refuses because the history it cosigned was rewritten
    When the auditor verifies the store requiring the witness's cosignature
    Then the verification fails because the witness cosigned none of the checkpoints

  @21cfr11.10e @annex11-9
  Scenario: An edited cache never changes the record
    Given the nonconformities were listed, so the read tables hold them
    And someone with database access changed the title of "Finding 1" in the read tables
    Then the record, its history and the export still show the title that was recorded
    When the auditor verifies the store
    Then the verification fails and names the read table and the nonconformity
    Given the quality manager rebuilt the read models
    When the auditor verifies the store
    Then the audit trail is intact
