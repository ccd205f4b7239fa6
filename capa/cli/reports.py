"""`capa readmodels`, `import`, `export`, `report` and `dashboard`: argument handling and output.
"""

from __future__ import annotations

import click

from capa.cli.main import Session, json_option, pass_session
from capa.cli.output import emit


@click.group()
def readmodels() -> None:
    """Read models: the projections that lists, overdue and the dashboard read.

    \b
    Example:
      capa readmodels rebuild
    """


@readmodels.command()
@json_option
@pass_session
def rebuild(session: Session) -> None:
    """Drop the read tables and project the whole event log again.

    \b
    Example:
      capa --db quality.db readmodels rebuild
    """
    emit(session.json, session.app().rebuild_read_models(), lambda d: (
        f"read models rebuilt up to position {d['position']}: {d['nonconformities']} NCs, "
        f"{d['corrective_actions']} CAs, {d['action_items']} action items"))


COMMANDS: tuple[click.Command, ...] = (readmodels,)


def _pending(name: str) -> click.Command:
    @click.command(name, context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(args: tuple[str, ...]) -> None:
        """Not available in this build yet."""
        raise click.UsageError(f"capa {name} is not available in this build yet")

    return command


import_ = _pending("import")
export = _pending("export")
report = _pending("report")
dashboard = _pending("dashboard")
