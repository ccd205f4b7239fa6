"""`capa init` and `capa demo`: bringing a store into being."""

from __future__ import annotations

import os
from pathlib import Path

import click

from capa.cli.main import Session, json_option, pass_session
from capa.cli.output import emit


@click.command()
@click.option("--admin", default=None, metavar="USER",
              help="User id of the first administrator (default: CAPA_USER).")
@click.option("--full-name", default=None, help="The administrator's printed name.")
@click.option("--org", "organisation", default="", help="Organisation name shown in reports.")
@click.option("--key", "key", default=None, metavar="PATH",
              help="Where to create the store's signing key (env CAPA_KEY; default "
                   "<store>.key; a PostgreSQL store needs --key or CAPA_KEY). The checkpoint "
                   "log, started with a checkpoint of the new store, goes beside the store, "
                   "or the key (env CAPA_CHECKPOINTS).")
@click.option("--profile", default="iso9001", show_default=True,
              type=click.Choice(["iso9001", "iso13485"]),
              help="The standard the store is run under; iso13485 adds R11 (a CA closes only "
                   "after its impact assessment, ISO 13485 8.5.2 e).")
@json_option
@pass_session
def init(session: Session, admin: str | None, full_name: str | None, organisation: str,
         key: str | None, profile: str) -> None:
    """Create a new, empty store and its first administrator (the only command that creates
    a store). The administrator's password comes from CAPA_PASSWORD or the prompt.

    \b
    Example:
      capa --db quality.db init --admin mhernandez --full-name "Maria Hernandez" \\
          --org "Northwind Medical Devices" --profile iso13485
    """
    from capa.app.passwords import check_strength
    from capa.app.store import open_store
    from capa.cli.auth import interactive
    from capa.domain.errors import InvalidInput
    from capa.domain.user import new_user_id

    admin_id = (admin or os.environ.get("CAPA_USER", "")).strip().lower()
    if not admin_id:
        raise click.UsageError("name the first administrator with --admin USER")
    password = os.environ.get("CAPA_PASSWORD", "")
    if not password:
        if not interactive():
            raise InvalidInput("the administrator needs a password: set CAPA_PASSWORD or run "
                               "capa init in a terminal")
        password = click.prompt("Administrator password", hide_input=True,
                                confirmation_prompt=True, err=True)
    # Checked before the store file exists, so a refused value leaves nothing behind.
    admin_id = new_user_id(admin_id)
    check_strength(password)
    from dataclasses import replace
    from pathlib import Path

    from capa.audit.checkpoints import CheckpointLog, checkpoint_log_path, make_checkpoint
    from capa.audit.keys import create_store_key, default_key_path

    key_path = Path(key) if key else default_key_path(session.db)
    log_path = checkpoint_log_path(session.db, key_path)
    # An existing store is reported as such by open_store; a key or log in the way of a new
    # store is refused before the store file is made.
    if key_path.exists() and not Path(session.db).exists():
        raise InvalidInput(f"a key already exists at {key_path}; give another path with --key")
    if log_path.exists() and not Path(session.db).exists():
        raise InvalidInput(f"a checkpoint log already exists at {log_path}; give another path "
                           "with CAPA_CHECKPOINTS")
    app = open_store(session.db, create=True)
    # The key lives outside the store; its fingerprint goes into the store's first event so a
    # replaced key is noticed (SPEC §5). The log exists from the start, so that from now on a
    # missing log fails verification instead of passing for a store never checkpointed.
    fingerprint = create_store_key(key_path)
    CheckpointLog(log_path).create()
    result = app.identity.initialise(organisation, fingerprint, admin=admin_id,
                                     full_name=full_name, password=password, profile=profile)
    # A genesis checkpoint over the store's first events: from now on a store writer who
    # rewrites the whole store (and its ledger) is caught by consistency with it (SPEC §9.4).
    make_checkpoint(app, key_path, log_path)
    result = replace(result, detail={**(result.detail or {}), "key": str(key_path),
                                     "key_fingerprint": fingerprint,
                                     "checkpoints": str(log_path)})
    from capa.app.storecopy import target_display

    # A URI's password is never printed.
    shown = target_display(session.db)
    emit(session.json, result, lambda d: f"store created at {shown} ({d['profile']} profile); "
                                         f"administrator {d['admin']}; signing key {d['key']}")


@click.command()
@json_option
@pass_session
def demo(session: Session) -> None:
    """Build a demo store telling a realistic CAPA story, then print a short tour.

    \b
    Example:
      capa --db demo.db demo
    """
    from pathlib import Path

    from capa.app.demo import build_demo, tour
    from capa.app.store import open_store
    from capa.audit.checkpoints import CheckpointLog, checkpoint_log_path, make_checkpoint
    from capa.audit.keys import create_store_key, default_key_path
    from capa.cli.output import record_text, to_data
    from capa.cli.records import _history_text
    from capa.domain.errors import InvalidInput

    # Like `capa init`, the demo makes the store's signing key and empty checkpoint log beside
    # it, so the audit commands (checkpoint, verify, export) work on the demo store too.
    key_path = default_key_path(session.db)
    log_path = checkpoint_log_path(session.db, key_path)
    for path, what in ((key_path, "a key"), (log_path, "a checkpoint log")):
        if path.exists() and not Path(session.db).exists():
            raise InvalidInput(f"{what} already exists at {path}; remove it or choose another "
                               "--db for the demo")
    from capa.cli.outfile import check_out, write_out

    # The dashboard and one 8D report go next to the store, for a first look without commands
    # (in the current folder for a PostgreSQL store, which has no file to sit beside); like any
    # --out, neither may be a symbolic link.
    folder = Path.cwd() if "://" in session.db else Path(session.db).resolve().parent
    check_out(folder / "dashboard.html")
    app = open_store(session.db, create=True)
    refs = build_demo(app, create_store_key(key_path))
    CheckpointLog(log_path).create()
    # As `capa init` does: a checkpoint of the finished demo, so that its log is never empty.
    make_checkpoint(app, key_path, log_path)
    outputs = {"dashboard": folder / "dashboard.html", "report": folder / f"{refs['ca']}.pdf"}
    check_out(outputs["report"])
    ca, trail, dashboard_html, report_pdf = tour(app, refs)
    write_out(outputs["dashboard"], dashboard_html)
    write_out(outputs["report"], report_pdf)
    if session.json:
        emit(True, {"store": session.db, "key": str(key_path), "records": refs,
                    "ca": to_data(ca),
                    "history": to_data(trail),
                    "files": {k: str(v) for k, v in outputs.items()}}, lambda d: "")
        return
    click.echo(f"Demo store written to {session.db}")
    click.echo(f"Dashboard: {outputs['dashboard']}")
    click.echo(f"8D report of {refs['ca']}: {outputs['report']}\n")
    click.echo(f"== {refs['ca']} as it stands now ==")
    click.echo(record_text(to_data(ca)))
    click.echo(f"\n== {refs['ca']} audit trail ==")
    click.echo(_history_text(to_data(trail)))
    import shlex

    from capa.app.demo import DEMO_PASSWORD, QUALITY_MANAGER

    # Typed as printed, from the folder the demo ran in: `capa` is often not on the PATH (it
    # sits in .venv/bin after `make demo`).
    run = f"{command_as_typed()} --db {shlex.quote(session.db)}"
    click.echo(f"\nTry next (every demo user's password is {DEMO_PASSWORD}):")
    for line in (f"export CAPA_USER={QUALITY_MANAGER} CAPA_PASSWORD={DEMO_PASSWORD}",
                 f"{run} nc list",
                 f"{run} ca show {refs['ca']} --version 10",
                 f"{run} history {refs['nc_no_ca']}",
                 f"{run} overdue",
                 f"{run} audit checkpoint",
                 f"{run} audit verify"):
        click.echo(f"  {line}")



def command_as_typed() -> str:
    """How to run this very `capa` from the current folder: `capa` when the PATH finds it,
    else its path (relative when it lies below the folder, as .venv/bin/capa does)."""
    import shlex
    import shutil
    import sys

    program = Path(sys.argv[0])
    if program.name != "capa":  # `python -m capa`, or capa called from Python code
        return f"{shlex.quote(_as_typed(Path(sys.executable)))} -m capa"
    found = shutil.which("capa")
    if found is not None and Path(found).resolve() == program.resolve():
        return "capa"
    return shlex.quote(_as_typed(program))


def _as_typed(program: Path) -> str:
    try:
        inside = program.absolute().relative_to(Path.cwd())
    except ValueError:
        return str(program.absolute())
    return str(inside) if "/" in str(inside) else f"./{inside}"
