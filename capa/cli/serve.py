"""`capa serve`: the store as an HTTP JSON API for a team (SPEC §11)."""

from __future__ import annotations

from typing import Any

import click

from capa.cli.main import Session, json_option, pass_session


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (behind a reverse proxy keep the loopback default).")
@click.option("--port", default=8750, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Server processes answering on the port (a PostgreSQL store; a SQLite file "
                   "is served by one).")
@click.option("--certfile", type=click.Path(exists=True, dir_okay=False), default=None,
              help="TLS certificate (PEM) to serve HTTPS directly.")
@click.option("--keyfile", type=click.Path(exists=True, dir_okay=False), default=None,
              help="TLS private key (PEM) of --certfile.")
@click.option("--notify-every", type=click.FloatRange(min=0.01), default=None,
              metavar="MINUTES",
              help="Send the due reminders (capa notify) this often, through CAPA_SMTP_URL.")
@click.option("--notify-as", default=None, metavar="USER",
              help="The quality or admin account the reminders are sent as (its password: "
                   "CAPA_PASSWORD in the server's environment).")
@click.option("--webhooks-every", type=click.FloatRange(min=0.01), default=None,
              metavar="SECONDS",
              help="Deliver the outgoing webhooks (capa webhook deliver) this often.")
@click.option("--webhooks-as", default=None, metavar="USER",
              help="The quality or admin account deliveries are recorded as (its password: "
                   "CAPA_PASSWORD in the server's environment).")
@json_option
@pass_session
def serve(session: Session, host: str, port: int, workers: int, certfile: str | None,
          keyfile: str | None, notify_every: float | None, notify_as: str | None,
          webhooks_every: float | None, webhooks_as: str | None) -> None:
    """Serve the store to a team: every operation of the command line as POST
    /v1/<service>/<method> (described at /openapi.json), /health without authentication. The
    server alone opens the store; clients run `capa --db http://HOST:PORT ...`. A write sent
    with an Idempotency-Key header is written at most once however often it is retried.
    Several workers, or several servers, may serve one PostgreSQL store.

    \b
    Example:
      capa --db postgresql://capa@db.example/capa serve --host 127.0.0.1 --port 8750
      capa --db postgresql://capa@db.example/capa serve --workers 4
      CAPA_USER=jchen CAPA_PASSWORD=... capa --db http://127.0.0.1:8750 nc list
      CAPA_SMTP_URL=smtp://mail.example:587?starttls=yes CAPA_PASSWORD=... \\
          capa --db quality.db serve --notify-every 60 --notify-as mhernandez
      CAPA_PASSWORD=... capa --db quality.db serve --webhooks-every 5 --webhooks-as mhernandez
    """
    if (certfile is None) != (keyfile is None):
        raise click.UsageError("--certfile and --keyfile go together")
    if (notify_every is None) != (notify_as is None):
        raise click.UsageError("--notify-every and --notify-as go together")
    if (webhooks_every is None) != (webhooks_as is None):
        raise click.UsageError("--webhooks-every and --webhooks-as go together")
    import os

    import uvicorn

    from capa.adapters.target import parse_target
    from capa.app.storecopy import target_display
    from capa.domain.errors import InvalidInput
    from capa.server.api import build_app

    if workers > 1 and not session.db.startswith(("http://", "https://")) and \
            parse_target(session.db).kind == "sqlite":
        # A SQLite file takes one writer at a time: more processes would only wait for its
        # lock, each with caches of its own. Teams that need more run PostgreSQL.
        raise InvalidInput("--workers above 1 needs a PostgreSQL store; a SQLite file is "
                           "served by one process")
    store = session.app()
    if notify_every is not None and notify_as is not None:
        # In this process only, however many workers answer: each reminder goes once.
        _schedule_reminders(store, notify_as.strip().lower(), notify_every)
    if webhooks_every is not None and webhooks_as is not None:
        # Likewise in this process only: each delivery is made by one dispatcher.
        from capa.cli.webhook import schedule_deliveries

        schedule_deliveries(store, webhooks_as.strip().lower(), webhooks_every)
    click.echo(f"capa serving {target_display(session.db)} on "
               f"{'https' if certfile else 'http'}://{host}:{port}"
               + (f" with {workers} workers" if workers > 1 else ""), err=True)
    options: dict[str, Any] = {"host": host, "port": port, "ssl_certfile": certfile,
                               "ssl_keyfile": keyfile, "log_level": "info", "access_log": True}
    if workers == 1:
        uvicorn.run(build_app(store), **options)
        return
    # Each worker opens the store itself (capa.server.api:create_app reads CAPA_DB).
    os.environ["CAPA_DB"] = session.db
    uvicorn.run("capa.server.api:create_app", factory=True, workers=workers, **options)


def _schedule_reminders(store: Any, user: str, minutes: float) -> None:
    """Run `capa notify` as `user` every `minutes` in a background thread, first once the
    account is checked here (a wrong password or a role that may not notify stops the start)."""
    import logging
    import os
    import threading

    from capa.domain.errors import CapaError, InvalidInput

    password = os.environ.get("CAPA_PASSWORD", "")
    smtp_url = os.environ.get("CAPA_SMTP_URL")
    if not (smtp_url or "").strip():
        raise InvalidInput("--notify-every needs the mail server: set CAPA_SMTP_URL")
    uid = store.identity.authenticate(user, password)
    log = logging.getLogger("capa.server.reminders")

    def run() -> None:
        while True:
            try:
                with store.acting_as(uid, password):
                    report = store.notifications.notify(
                        smtp_url=smtp_url, sender=os.environ.get("CAPA_SMTP_FROM"))
                log.warning("reminders: %d sent, %d failed, %d skipped, %d already sent",
                            len(report["sent"]), len(report["failed"]),
                            len(report["skipped"]), report["already_sent"])
            except CapaError as exc:
                log.warning("reminders not sent: %s", exc)
            except Exception:  # noqa: BLE001 - the server keeps serving; the next round retries
                log.exception("reminders failed")
            stop.wait(minutes * 60)

    stop = threading.Event()
    threading.Thread(target=run, name="capa-reminders", daemon=True).start()
