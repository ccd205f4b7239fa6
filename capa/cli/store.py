"""`capa store`: looking after the store itself (copying it to another back end)."""

from __future__ import annotations

import click

from capa.cli.main import Session, json_option, pass_session
from capa.cli.output import emit


@click.group()
def store() -> None:
    """Look after the store itself.

    \b
    Example:
      capa --db capa.db store copy --to postgresql://capa@db.example/capa
    """


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
