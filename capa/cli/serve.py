"""`capa serve`: the store as an HTTP JSON API for a team (SPEC §11)."""

from __future__ import annotations

import click

from capa.cli.main import Session, pass_session


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (behind a reverse proxy keep the loopback default).")
@click.option("--port", default=8750, show_default=True, type=click.IntRange(0, 65535))
@click.option("--certfile", type=click.Path(exists=True, dir_okay=False), default=None,
              help="TLS certificate (PEM) to serve HTTPS directly.")
@click.option("--keyfile", type=click.Path(exists=True, dir_okay=False), default=None,
              help="TLS private key (PEM) of --certfile.")
@pass_session
def serve(session: Session, host: str, port: int, certfile: str | None,
          keyfile: str | None) -> None:
    """Serve the store to a team: every operation of the command line as POST
    /v1/<service>/<method> (described at /openapi.json), /health without authentication. The
    server alone opens the store; clients run `capa --db http://HOST:PORT ...`.

    \b
    Example:
      capa --db postgresql://capa@db.example/capa serve --host 127.0.0.1 --port 8750
      CAPA_USER=jchen CAPA_PASSWORD=... capa --db http://127.0.0.1:8750 nc list
    """
    if (certfile is None) != (keyfile is None):
        raise click.UsageError("--certfile and --keyfile go together")
    import uvicorn

    from capa.app.storecopy import target_display
    from capa.server.api import build_app

    store = session.app()
    click.echo(f"capa serving {target_display(session.db)} on "
               f"{'https' if certfile else 'http'}://{host}:{port}", err=True)
    uvicorn.run(build_app(store), host=host, port=port, ssl_certfile=certfile,
                ssl_keyfile=keyfile, log_level="info", access_log=True)
