"""`capa audit`: checkpoints, verification, bundles, proofs, witnesses (SPEC §5, §9.7, §9.8)
and the audit-trail review (SPEC §12).

Size: every subcommand of the one `audit` group, loaded together when the group runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from capa.cli.main import Session, json_option, pass_session
from capa.cli.output import emit

if TYPE_CHECKING:
    from capa.audit.vkeys import Verifier

F = TypeVar("F", bound=Callable[..., Any])


def key_option(f: F) -> F:
    return click.option(
        "--key", "key", type=click.Path(path_type=Path), default=None, metavar="PATH",
        help="The store's Ed25519 key (env CAPA_KEY; default <store>.key; a PostgreSQL store "
             "needs --key or CAPA_KEY).")(f)


def log_option(f: F) -> F:
    return click.option(
        "--checkpoints", "--log", "log", type=click.Path(path_type=Path), default=None,
        metavar="FILE", help="The checkpoint log (env CAPA_CHECKPOINTS; default "
                             "<store>.checkpoints, or <key name>.checkpoints beside a "
                             "PostgreSQL store's key).")(f)


def public_key_option(f: F) -> F:
    return click.option(
        "--public-key", "public_key", type=click.Path(path_type=Path, exists=True,
                                                      dir_okay=False),
        default=None, metavar="PEM", help="The store public key you trust (default: the one "
                                          "next to the store key).")(f)


def witness_option(f: F) -> F:
    return click.option(
        "--witness", "witnesses", multiple=True, metavar="VKEY",
        help="A witness's cosignature vkey (or a file holding it): a checkpoint checked must "
             "carry its valid cosignature; may be repeated.")(f)


def _witnesses(values: tuple[str, ...]) -> list[Verifier]:
    from capa.audit.vkeys import COSIGNATURE_TYPE
    from capa.audit.witness import read_vkey

    return [read_vkey(v, COSIGNATURE_TYPE, "--witness") for v in values]


def _paths(session: Session, key: Path | None, log: Path | None) -> tuple[Path, Path]:
    from capa.audit.checkpoints import checkpoint_log_path
    from capa.audit.keys import default_key_path

    key_path = key or default_key_path(session.db)
    return key_path, log or checkpoint_log_path(session.db, key_path)


@click.group()
def audit() -> None:
    """Prove the audit trail intact: checkpoints, verification, bundles and proofs.

    \b
    Example:
      capa audit checkpoint
      capa audit verify --against ~/kept/capa-2026-06-30.checkpoint
    """


@audit.command()
@key_option
@log_option
@json_option
@pass_session
def checkpoint(session: Session, key: Path | None, log: Path | None) -> None:
    """Sign the current size and root of the ledger and append it to the checkpoint log.

    Keep a copy of the printed checkpoint somewhere the store's administrators cannot write:
    `capa audit verify --against` that copy proves later that no earlier event was rewritten.

    \b
    Example:
      capa audit checkpoint > ~/kept/$(date +%F).checkpoint
    """
    key_path, log_path = _paths(session, key, log)
    result = session.app().audit.checkpoint(key_path, log_path)
    emit(session.json, result, lambda d: str(d["note"]).rstrip("\n"))


@audit.command()
@click.option("--against", "against", multiple=True, metavar="FILE",
              type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="A checkpoint kept elsewhere: the history it covers must be unchanged.")
@witness_option
@key_option
@public_key_option
@log_option
@json_option
@pass_session
def verify(session: Session, against: tuple[Path, ...], witnesses: tuple[str, ...],
           key: Path | None, public_key: Path | None, log: Path | None) -> None:
    """Recompute every event's hash and check every checkpoint and signature, then every
    snapshot and read-table row against the events (exit 6 on failure; each cached row that
    does not match is listed, naming its table and record).

    A store bound to a key fails when its key or checkpoint log cannot be found, unless you
    name what to check against: --public-key, --checkpoints, --against.

    \b
    Example:
      capa audit verify --against kept.checkpoint
      capa audit verify --against cosigned.checkpoint --witness qa-head+1a2b3c4d+BK...
    """
    from capa.audit.caches import CachesDiffer
    from capa.audit.checkpoints import configured_log_path
    from capa.audit.keys import configured_key_path, public_key_for

    required = _witnesses(witnesses)
    # Not the places other commands insist on: what is missing is the verification's finding.
    key_path = key or configured_key_path(session.db)
    log_path = log or configured_log_path(session.db, key_path)
    app = session.app()
    try:
        result = app.audit.verify(public_key_for(key_path, public_key, required=False),
                                  log_path, against, required, key_path=key_path)
    except CachesDiffer as differ:
        # Every edited cache row, one line each (all of them in --json), then the failure.
        emit(session.json, differ.summary, lambda d: "\n".join(
            f"mismatch: {m['table']} {m['record']}: {m['problem']}" for m in d["mismatches"]))
        raise
    emit(session.json, result, lambda d: (
        f"verified: {d['events']} events, root {d['root']}, {d['checkpoints']} checkpoint(s) "
        f"in the log" + "".join(f"; consistent with {k['file']} ({k['size']} events)"
                                for k in d["kept_checkpoints"]) + _cosigned_text(d)
        + _signed_text(d)))


def _cosigned_text(d: dict[str, Any]) -> str:
    return "".join(f"; cosigned by {w['witness']} up to {w['size']} events"
                   for w in d.get("witnesses", []))


def _signed_text(d: dict[str, Any]) -> str:
    s = d.get("signatures") or {}
    return (f"\nsignatures: {s.get('digital', 0)} digital (checked against the signer's key), "
            f"{s.get('password-attested', 0)} password-attested (no digital signature)"
            + _role_text(s.get("role_changes")) + _account_text(s.get("account_changes"))
            + _service_text(s.get("service_accounts")))


def _role_text(roles: Any) -> str:
    if not isinstance(roles, dict):
        return ""
    return (f"; role changes: {roles.get('signed', 0)} signed by an administrator, "
            f"{roles.get('legacy', 0)} legacy (unsigned, before digital signatures)")


def _account_text(changes: Any) -> str:
    if not isinstance(changes, dict):
        return ""
    return (f"; deactivations, unlocks and password changes: {changes.get('signed', 0)} signed, "
            f"{changes.get('legacy', 0)} legacy (unsigned, before digital signatures)")


def _service_text(changes: Any) -> str:
    if not isinstance(changes, dict) or not any(changes.values()):
        return ""
    return (f"; service accounts and their API tokens: {changes.get('signed', 0)} signed, "
            f"{changes.get('legacy', 0)} legacy (unsigned, before digital signatures)")


@audit.command()
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), metavar="PATH",
              help="A new folder, or a FILE.zip.")
@key_option
@public_key_option
@log_option
@json_option
@pass_session
def export(session: Session, out: Path, key: Path | None, public_key: Path | None,
           log: Path | None) -> None:
    """Write an evidence bundle an auditor verifies offline (events, checkpoint, key, manifest).

    \b
    Example:
      capa audit export --out audit-2026-06.zip
      python scripts/verify_bundle.py audit-2026-06.zip
    """
    from capa.audit.keys import public_key_for
    from capa.cli.outfile import check_out_place

    check_out_place(out)
    key_path, log_path = _paths(session, key, log)
    app = session.app()
    trusted = public_key_for(key_path, public_key)
    assert trusted is not None
    result = app.audit.export(out, key_path, log_path, trusted)
    emit(session.json, result,
         lambda d: f"bundle written to {d['out']}: {d['events']} events, root {d['root']}"
         + (f"; {d['withheld']} account event(s) of an earlier release carried as their leaf "
            "hash only (they hold a password hash)" if d["withheld"] else ""))


@audit.command("verify-bundle")
@click.argument("bundle", type=click.Path(path_type=Path), metavar="PATH")
@click.option("--checkpoint", "kept", multiple=True, metavar="FILE",
              type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="An earlier checkpoint kept elsewhere; may be repeated.")
@public_key_option
@click.option("--vkey", "store_vkey", default=None, metavar="VKEY",
              help="The store's verifier key you trust, as printed by capa audit vkey (or a "
                   "file holding it).")
@witness_option
@click.option("--extract", "extract", default=None, metavar="DIR",
              type=click.Path(file_okay=False, path_type=Path),
              help="Once verified, write the bundle's evidence files into DIR (new or empty), "
                   "each checked against its SHA-256.")
@json_option
@pass_session
def verify_bundle(session: Session, bundle: Path, kept: tuple[Path, ...],
                  public_key: Path | None, store_vkey: str | None,
                  witnesses: tuple[str, ...], extract: Path | None) -> None:
    """Verify an exported bundle offline: no store and no login needed (exit 6 on failure).

    Without a pinned key (--public-key or --vkey) this proves only that the bundle is
    self-consistent: its events match its own checkpoint, signed by the key the bundle itself
    carries. Pin the store's public key, obtained separately, to prove the bundle comes from
    that store.

    Account events of earlier releases that hold a password hash are carried as their leaf
    hash only: their place in the history is proved, their content is not, and the output
    says how many such lines there are.

    \b
    Example:
      capa audit verify-bundle audit-2026-06.zip --public-key capa.db.key.pub
      capa audit verify-bundle audit-2026-06.zip --public-key capa.db.key.pub --extract ev/
      capa audit verify-bundle audit-2026-06.zip --vkey capa/0a1b...+5e6f7a8b+AX... \\
          --checkpoint cosigned.checkpoint --witness qa-head+1a2b3c4d+BK...
    """
    from capa.audit.bundle import verify_bundle as check
    from capa.audit.vkeys import ED25519_SIGNATURE_TYPE
    from capa.audit.witness import read_vkey

    pinned_vkey = (read_vkey(store_vkey, ED25519_SIGNATURE_TYPE, "--vkey") if store_vkey
                   else None)
    result = check(bundle, list(kept), public_key, pinned_vkey, _witnesses(witnesses))
    pinned = public_key is not None or pinned_vkey is not None
    result = {**result, "pinned_key": pinned,
              "proved": "origin" if pinned else "self-consistency only"}
    if extract is not None:
        from capa.audit.bundle_evidence import extract_evidence

        result["extracted"] = extract_evidence(bundle, extract)
    emit(session.json, result, lambda d: (
        f"OK: {d['events']} events, root {d['root']}, signed {d['signed_at'] or '(no time)'} "
        f"by key {d['key_fingerprint']}" + "".join(
            f", consistent with {k['file']} ({k['size']} events)"
            for k in d["kept_checkpoints"]) + _cosigned_text(d).replace(";", ",")
        + (f"\n{d['withheld']} line(s) withheld ({d['withheld_reason']}): their place in the "
           "tree is proved, their content could not be read" if d["withheld"] else "")
        + _signed_text(d)
        + ("" if d["pinned_key"] else _UNPINNED) + _extracted_text(d, extract)))


def _extracted_text(d: dict[str, Any], folder: Path | None) -> str:
    if folder is None:
        return ""
    return f"\nextracted {len(d['extracted'])} evidence file(s) into {folder}" + "".join(
        f"\n  {e['file']}  {e['size']} bytes  sha256 {e['sha256']}" for e in d["extracted"])


#: Said after an unpinned bundle check: what it did not prove.
_UNPINNED = ("\nnote: no key was pinned (--public-key or --vkey), so this proves only that the "
             "bundle is self-consistent, not that it comes from your store")


@audit.command()
@click.argument("record_id", metavar="ID")
@click.option("--format", "form", type=click.Choice(["text", "c2sp"]), default="text",
              show_default=True, help="c2sp: one C2SP tlog-proof per event.")
@click.option("--version", "version", type=click.IntRange(min=1), default=None, metavar="N",
              help="Only the event of this version of the record.")
@key_option
@public_key_option
@log_option
@json_option
@pass_session
def prove(session: Session, record_id: str, form: str, version: int | None, key: Path | None,
          public_key: Path | None, log: Path | None) -> None:
    """Inclusion proofs of every event of one record against the latest checkpoint.

    \b
    Example:
      capa audit prove CA-2026-0001 --json > proofs.json
      capa audit prove CA-2026-0001 --version 1 --format c2sp > CA-2026-0001.v1.tlog-proof
    """
    from capa.audit.keys import public_key_for

    key_path, log_path = _paths(session, key, log)
    app = session.app()
    result = app.audit.prove(record_id, log_path,
                             public_key_for(key_path, public_key, required=False))
    if form == "c2sp":
        from capa.audit.proofs import tlog_proofs

        text = tlog_proofs(result, version)
        emit(session.json, {"id": result["id"], "format": "c2sp", "tlog_proof": text},
             lambda d: str(d["tlog_proof"]).rstrip("\n"))
        return
    if version is not None:
        result["events"] = [e for e in result["events"] if e["version"] == version]
        if not result["events"]:
            from capa.domain.errors import NotFound

            raise NotFound(f"{result['id']} has no version {version}")
    emit(session.json, result, _proofs_text)


def _proofs_text(d: dict[str, Any]) -> str:
    signed = "the latest checkpoint" if d["checkpoint"] else "the current root (not yet signed)"
    lines = [f"{d['id']}: {len(d['events'])} event(s) in a tree of {d['tree_size']} against "
             f"{signed}", f"root {d['root']}"]
    for e in d["events"]:
        lines.append(f"#{e['position']}  v{e['version']}  leaf {e['leaf_hash']}")
        lines += [f"    {h}" for h in e["proof"]]
    if d["checkpoint"]:
        lines += ["", str(d["checkpoint"]).rstrip("\n")]
    return "\n".join(lines)


@audit.command()
@key_option
@public_key_option
@json_option
@pass_session
def vkey(session: Session, key: Path | None, public_key: Path | None) -> None:
    """Print the store's verifier key (signed-note form), for Go's sumdb/note or any C2SP tool.

    \b
    Example:
      capa audit vkey > capa-store.vkey
    """
    from capa.audit.keys import default_key_path, fingerprint, origin_of, public_key_for
    from capa.audit.vkeys import vkey as verifier_key

    trusted = public_key_for(key or default_key_path(session.db), public_key)
    assert trusted is not None
    name = origin_of(trusted)
    emit(session.json, {"vkey": verifier_key(name, trusted), "name": name,
                        "key_fingerprint": fingerprint(trusted)}, lambda d: str(d["vkey"]))


@audit.command()
@click.option("--from", "older", required=True, metavar="FILE",
              type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="The earlier checkpoint.")
@click.option("--to", "newer", default=None, metavar="FILE",
              type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="The later checkpoint (default: the latest of the checkpoint log).")
@key_option
@public_key_option
@log_option
@json_option
@pass_session
def consistency(session: Session, older: Path, newer: Path | None, key: Path | None,
                public_key: Path | None, log: Path | None) -> None:
    """Print the RFC 6962 consistency proof between two checkpoints, checked first (exit 6).

    The output is what `capa audit witness cosign --proof` reads.

    \b
    Example:
      capa audit consistency --from last-cosigned.checkpoint > proof.txt
    """
    from capa.audit.keys import public_key_for

    key_path, log_path = _paths(session, key, log)
    app = session.app()
    trusted = public_key_for(key_path, public_key)
    assert trusted is not None
    result = app.audit.consistency(trusted, older, newer, log_path)
    emit(session.json, result, lambda d: str(d["text"]).rstrip("\n"))


@audit.command()
@click.option("--from", "start", required=True, metavar="YYYY-MM-DD",
              help="First day of the period reviewed (UTC).")
@click.option("--to", "end", required=True, metavar="YYYY-MM-DD",
              help="Last day of the period reviewed (UTC), included.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE", help="Also write the review to FILE: Markdown for .md, one JSON "
                                   "document for .json, the text shown otherwise.")
@click.option("--sign", "sign", is_flag=True,
              help="Record the review with your signature (meaning: review); asks for your "
                   "password again. Quality and admin only.")
@json_option
@pass_session
def review(session: Session, start: str, end: str, out: Path | None, sign: bool) -> None:
    """List by exception what a reviewer must look at in the audit trail recorded in a period:
    amendments, reopenings, cancellations, due-date extensions, past due dates accepted, role
    and account changes, failed logins, lockouts, late entries and migrated records.

    With --sign the review is recorded as a signed event on the record AUDIT-TRAIL (see
    `capa history AUDIT-TRAIL`): the period, the count per category and the SHA-256 of the
    exceptions listed, so the review is evidence of exactly what was seen. Quality, admin and
    auditors may list; quality and admin may sign (auditors never change the store).

    \b
    Example:
      capa audit review --from 2026-06-01 --to 2026-06-30
      capa audit review --from 2026-06-01 --to 2026-06-30 --out review-2026-06.md --sign
    """
    from capa.app.reviews import review_period
    from capa.cli.outfile import check_out, write_out
    from capa.cli.output import json_text
    from capa.reports.trail_review import review_markdown, review_text

    review_period(start, end)  # bad dates are refused before any password is asked for
    if out is not None:
        check_out(out)
    reviews = session.app().reviews
    result = reviews.sign_trail_review(start, end) if sign else reviews.trail_review(start, end)
    if out is not None:
        suffix = out.suffix.lower()
        content = (review_markdown(result) if suffix in (".md", ".markdown")
                   else json_text(result, indent=2) if suffix == ".json"
                   else review_text(result))
        write_out(out, (content + "\n").encode("utf-8"))
    emit(session.json, result, review_text)


@audit.group()
def witness() -> None:
    """A witness on your own machine: cosigns checkpoints only while history is append-only.

    \b
    Example:
      capa audit witness init --name qa-head.example/w1 --dir ~/capa-witness
      capa audit witness cosign new.checkpoint --dir ~/capa-witness --proof proof.txt
    """


@witness.command("init")
@click.option("--name", "name", required=True, help="The witness's key name, e.g. "
                                                     "qa-head.example/w1.")
@click.option("--dir", "folder", required=True, type=click.Path(path_type=Path),
              metavar="DIR", help="A new folder for the witness key and state.")
@click.option("--log-vkey", "log_vkey", default=None, metavar="VKEY",
              help="The store vkey (capa audit vkey) whose checkpoints alone it cosigns.")
@json_option
@pass_session
def witness_init(session: Session, name: str, folder: Path, log_vkey: str | None) -> None:
    """Create a witness (an Ed25519 key and its state, files 0600) and print its vkey.

    \b
    Example:
      capa audit witness init --name qa-head.example/w1 --dir ~/capa-witness \\
          --log-vkey "$(capa audit vkey)"
    """
    from capa.audit.witness import init_witness

    result = init_witness(name, folder, log_vkey)
    emit(session.json, result, lambda d: str(d["vkey"]))


@witness.command("cosign")
@click.argument("checkpoint", type=click.Path(path_type=Path, exists=True, dir_okay=False),
                metavar="CHECKPOINT")
@click.option("--dir", "folder", required=True, type=click.Path(path_type=Path),
              metavar="DIR", help="The witness folder.")
@click.option("--proof", "proof", default=None, metavar="PROOF",
              type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Consistency proof from the last checkpoint this witness cosigned (capa "
                   "audit consistency); not needed the first time.")
@json_option
@pass_session
def witness_cosign(session: Session, checkpoint: Path, folder: Path,
                   proof: Path | None) -> None:
    """Check a checkpoint is consistent with the last one cosigned, then print it cosigned.

    \b
    Example:
      capa audit witness cosign new.checkpoint --dir ~/capa-witness --proof proof.txt \\
          > cosigned.checkpoint
    """
    from capa.audit.witness import cosign

    result = cosign(checkpoint, folder, proof)
    emit(session.json, result, lambda d: str(d["note"]).rstrip("\n"))
