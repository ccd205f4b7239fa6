"""`capa store`: looking after the store itself: what it is, its profile, copying it to
another back end."""

from __future__ import annotations

import click

from capa.cli.main import Session, json_option, pass_session
from capa.cli.output import emit


@click.group()
def store() -> None:
    """Look after the store itself.

    \b
    Example:
      capa --db capa.db store info
      capa --db capa.db store copy --to postgresql://capa@db.example/capa
    """


@store.command()
@json_option
@pass_session
def info(session: Session) -> None:
    """Show the store's organisation, profile, creation time, release and key fingerprint.

    \b
    Example:
      capa store info
    """
    from capa.cli.output import record_text

    emit(session.json, session.app().identity.store_details(), record_text)


@store.command()
@click.argument("profile", type=click.Choice(["iso9001", "iso13485"]))
@click.option("--reason", required=True, help="Why the store changes profile (kept).")
@json_option
@pass_session
def profile(session: Session, profile: str, reason: str) -> None:
    """Switch the store to another profile, with a reason (admin). Under iso13485 a CA closes
    only after its impact assessment (R11); CAs closed before the switch stay closed.

    \b
    Example:
      capa store profile iso13485 --reason "Certification to ISO 13485:2016 from 2027-01"
    """
    emit(session.json, session.app().identity.change_profile(profile, reason=reason),
         lambda d: f"the store now has the {d['profile']} profile (version {d['version']})")


@store.command()
@click.option("--to", "target", required=True, metavar="TARGET",
              help="The store to copy into: a SQLite file path or a postgresql:// URI.")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(min=1),
              help="Events written per transaction.")
@json_option
@pass_session
def copy(session: Session, target: str, batch_size: int) -> None:
    """Copy every stored event of this store, in order and byte for byte, into a new or empty
    store, then check that both hold the same events. An interrupted copy can be run again: it
    carries on where it stopped. Needs the admin role.

    \b
    Example:
      capa --db capa.db store copy --to "postgresql://capa@db.example:5432/capa"
      capa --db postgresql://capa@/capa?host=/run/postgresql store copy --to backup.db
    """
    from capa.app.storecopy import target_display

    report = session.app().audit.copy_store(target, source_name=target_display(session.db),
                                            batch_size=batch_size)
    emit(session.json, report.as_dict(),
         lambda d: f"copied {d['copied']} events to {d['target']}; "
                   f"{d['events']} events in both stores, verified")
