"""`capa init` and `capa demo`: bringing a store into being."""

from __future__ import annotations

import os

import click

from capa.cli.main import Session, json_option, pass_session
from capa.cli.output import emit, written


@click.command()
@click.option("--org", "organisation", default="", help="Organisation name shown in reports.")
@json_option
@pass_session
def init(session: Session, organisation: str) -> None:
    """Create a new, empty store (the only command that creates one).

    \b
    Example:
      CAPA_USER=mhernandez capa --db quality.db init --org "Northwind Medical Devices"
    """
    from capa.app.store import open_store

    app = open_store(session.db, create=True)
    with app.acting_as(os.environ.get("CAPA_USER", "").strip()):
        result = app.initialise(organisation)
    emit(session.json, result, lambda d: f"store created at {session.db}")


@click.command()
@json_option
@pass_session
def demo(session: Session) -> None:
    """Build a demo store telling a realistic CAPA story, then print a short tour.

    \b
    Example:
      capa --db demo.db demo
    """
    from capa.app.demo import build_demo
    from capa.app.store import open_store
    from capa.cli.output import record_text, to_data
    from capa.cli.records import _history_text

    app = open_store(session.db, create=True)
    refs = build_demo(app)
    ca = app.show(refs["ca"])
    trail = app.history(refs["ca"])
    if session.json:
        emit(True, {"store": session.db, "records": refs, "ca": to_data(ca),
                    "history": to_data(trail)}, lambda d: "")
        return
    click.echo(f"Demo store written to {session.db}\n")
    click.echo(f"== {refs['ca']} as it stands now ==")
    click.echo(record_text(to_data(ca)))
    click.echo(f"\n== {refs['ca']} audit trail ==")
    click.echo(_history_text(to_data(trail)))
    click.echo("\nTry next:")
    for line in (f"capa --db {session.db} nc list",
                 f"capa --db {session.db} ca show {refs['ca']} --version 10",
                 f"capa --db {session.db} history {refs['nc_no_ca']}",
                 f"capa --db {session.db} overdue"):
        click.echo(f"  {line}")

