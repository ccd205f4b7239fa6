"""`capa audit`: checkpoints, verification, evidence bundles and inclusion proofs (SPEC §5)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from capa.cli.main import Session, json_option, pass_session
from capa.cli.output import emit

F = TypeVar("F", bound=Callable[..., Any])


def key_option(f: F) -> F:
    return click.option(
        "--key", "key", type=click.Path(path_type=Path), default=None, metavar="PATH",
        help="The store's Ed25519 key (env CAPA_KEY; default <store>.key, or ./capa-audit.key "
             "for a PostgreSQL store).")(f)


def log_option(f: F) -> F:
    return click.option(
        "--log", "log", type=click.Path(path_type=Path), default=None, metavar="FILE",
        help="The checkpoint log (env CAPA_CHECKPOINTS; default <store>.checkpoints).")(f)


def public_key_option(f: F) -> F:
    return click.option(
        "--public-key", "public_key", type=click.Path(path_type=Path, exists=True,
                                                      dir_okay=False),
        default=None, metavar="PEM", help="The store public key you trust (default: the one "
                                          "next to the store key).")(f)


def _paths(session: Session, key: Path | None, log: Path | None) -> tuple[Path, Path]:
    from capa.audit.verify import checkpoint_log_path, default_key_path

    return key or default_key_path(session.db), log or checkpoint_log_path(session.db)


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
    from capa.audit.verify import make_checkpoint

    key_path, log_path = _paths(session, key, log)
    result = make_checkpoint(session.app(), key_path, log_path)
    emit(session.json, result, lambda d: str(d["note"]).rstrip("\n"))


@audit.command()
@click.option("--against", "against", multiple=True, metavar="FILE",
              type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="A checkpoint kept elsewhere: the history it covers must be unchanged.")
@key_option
@public_key_option
@log_option
@json_option
@pass_session
def verify(session: Session, against: tuple[Path, ...], key: Path | None,
           public_key: Path | None, log: Path | None) -> None:
    """Recompute every event's hash and check every checkpoint and signature (exit 6 on failure).

    \b
    Example:
      capa audit verify --against kept.checkpoint
    """
    from capa.audit.verify import public_key_for, verify_store

    key_path, log_path = _paths(session, key, log)
    app = session.app()
    result = verify_store(app, public_key_for(key_path, public_key, required=False), log_path,
                          against)
    emit(session.json, result, lambda d: (
        f"verified: {d['events']} events, root {d['root']}, {d['checkpoints']} checkpoint(s) "
        f"in the log" + "".join(f"; consistent with {k['file']} ({k['size']} events)"
                                for k in d["kept_checkpoints"]) + _signed_text(d)))


def _signed_text(d: dict[str, Any]) -> str:
    s = d.get("signatures") or {}
    return (f"\nsignatures: {s.get('digital', 0)} digital (checked against the signer's key), "
            f"{s.get('password-attested', 0)} password-attested (no digital signature)")


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
    from capa.audit.bundle import export_bundle
    from capa.audit.verify import public_key_for

    key_path, log_path = _paths(session, key, log)
    app = session.app()
    trusted = public_key_for(key_path, public_key)
    assert trusted is not None
    result = export_bundle(app, out, key_path, log_path, trusted)
    emit(session.json, result,
         lambda d: f"bundle written to {d['out']}: {d['events']} events, root {d['root']}")


@audit.command("verify-bundle")
@click.argument("bundle", type=click.Path(path_type=Path), metavar="PATH")
@click.option("--checkpoint", "kept", multiple=True, metavar="FILE",
              type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="An earlier checkpoint kept elsewhere; may be repeated.")
@public_key_option
@json_option
@pass_session
def verify_bundle(session: Session, bundle: Path, kept: tuple[Path, ...],
                  public_key: Path | None) -> None:
    """Verify an exported bundle offline: no store and no login needed (exit 6 on failure).

    \b
    Example:
      capa audit verify-bundle audit-2026-06.zip --public-key capa.db.key.pub
    """
    from capa.audit.bundle import verify_bundle as check

    result = check(bundle, list(kept), public_key)
    emit(session.json, result, lambda d: (
        f"OK: {d['events']} events, root {d['root']}, signed {d['signed_at']} by key "
        f"{d['key_fingerprint']}" + "".join(f", consistent with {k['file']} ({k['size']} "
                                           "events)" for k in d["kept_checkpoints"])
        + _signed_text(d)))


@audit.command()
@click.argument("record_id", metavar="ID")
@key_option
@public_key_option
@log_option
@json_option
@pass_session
def prove(session: Session, record_id: str, key: Path | None, public_key: Path | None,
          log: Path | None) -> None:
    """Inclusion proofs of every event of one record against the latest checkpoint.

    \b
    Example:
      capa audit prove CA-2026-0001 --json > proofs.json
    """
    from capa.audit.verify import prove_record, public_key_for

    key_path, log_path = _paths(session, key, log)
    app = session.app()
    result = prove_record(app, record_id, log_path,
                          public_key_for(key_path, public_key, required=False))
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
