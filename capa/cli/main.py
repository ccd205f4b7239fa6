"""The `capa` command: global options, command registration and the one map of exit codes."""

from __future__ import annotations

import gc
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

import capa
from capa.domain.errors import CapaError, InvalidInput, NotPermitted, exit_code

if TYPE_CHECKING:
    from capa.app.application import CapaApplication

EXIT_CODES_HELP = """\b
Exit codes:
  0  success
  1  refused by a workflow rule (the message names the rule, e.g. R2)
  2  invalid usage or input
  3  not found (record, user, store)
  4  not authenticated, wrong password, locked, or not permitted
  5  conflict: the record changed concurrently; nothing was written
  6  integrity check failed
"""

F = TypeVar("F", bound=Callable[..., Any])

#: True when `main()` runs as the process's own entry point (`capa`, `python -m capa`), not
#: called from Python code such as the tests.
_process: dict[str, bool] = {"entry": False}


@contextmanager
def _loading() -> Iterator[None]:
    """Loading the application's modules allocates thousands of objects (classes, functions,
    event dataclasses) that live as long as the process: the cyclic collector would sweep them
    repeatedly while they load, and again at exit, for nothing. It pauses while they load; in a
    `capa` process they are then exempted from collection (gc.freeze), so that later
    collections, and the one at exit, only look at the command's own objects (start-up time,
    SPEC §7 P1)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if _process["entry"]:
            gc.freeze()
        if was_enabled:
            gc.enable()


#: Commands that bring a store into being: they never fall back to the session's store.
STORE_CREATING_COMMANDS = frozenset({"init", "demo"})


class Session:
    """Per-invocation state: where the store is, how to print, and the opened application."""

    def __init__(self, db: str, as_json: bool, *, db_given: bool = True) -> None:
        self._given = db
        #: Whether the store was named (--db or CAPA_DB), not taken from the default.
        self.db_given = db_given
        self._db: str | None = None
        self.json = as_json
        self._app: CapaApplication | None = None
        #: The password presented for this command, if any (re-checked when signing).
        self.password: str | None = None

    @property
    def db(self) -> str:
        """The store: --db or CAPA_DB; else the store of the `capa login` session on this
        machine (said on stderr), so that a command run in another folder does not look for
        ./capa.db; else ./capa.db."""
        if self._db is None:
            self._db = self._given if self.db_given else self._default_store()
        return self._db

    def _default_store(self) -> str:
        ctx = click.get_current_context(silent=True)
        words = ctx.command_path.split()[1:] if ctx is not None else []
        if words and words[0] in STORE_CREATING_COMMANDS:
            return self._given
        from pathlib import Path

        from capa.cli.auth import session_server_store, session_store

        remembered = session_store()
        if remembered is None:
            unreachable = session_server_store()
            if unreachable is not None and not self.json:
                click.echo(f"your session's store {unreachable} is used only when named with "
                           "--db or CAPA_DB (the session never keeps a database password)",
                           err=True)
            return self._given
        if remembered == str(Path(self._given).resolve()):
            return self._given
        if not self.json:  # with --json, stderr carries only the error document
            from capa.app.storecopy import target_display

            click.echo(f"using store {target_display(remembered)} (from your session)",
                       err=True)
        return remembered

    def app(self) -> CapaApplication:
        if self._app is None:
            with _loading():
                from capa.app.permissions import UNAUTHENTICATED_COMMANDS, is_named
                from capa.app.store import open_store
                from capa.cli.auth import authenticate

            ctx = click.get_current_context()
            command = " ".join(ctx.command_path.split()[1:])
            if not is_named(command):
                # Default deny (SPEC §9.6): refused before any password is checked or recorded.
                raise NotPermitted(f"{command} may not be run by anyone: the permission table "
                                   "does not name it")
            # Opened after the freeze: the application and its connections are collected (and
            # closed) at exit like any other object of the command.
            if self.db.startswith(("http://", "https://")):
                from typing import cast

                from capa.cli.remote import RemoteApplication

                if command == "serve":
                    raise InvalidInput(f"capa {command} works on a store, not through a server "
                                       f"({self.db})")
                # A client of `capa serve` (SPEC §11): the server checks everything again.
                self._app = cast("CapaApplication", RemoteApplication(self.db))
            else:
                self._app = open_store(self.db)
            if command in UNAUTHENTICATED_COMMANDS:
                return self._app
            # Every other command runs as an authenticated user (SPEC §2); the password is
            # kept for the command so that a signature can check it again (R10). Each
            # operation the command calls checks that user against the permission table.
            # A command that signs only with its --sign flag is the signing command
            # "<command> --sign" (capa.app.permissions.SIGNING_COMMANDS) when it is given.
            signing = f"{command} --sign" if ctx.params.get("sign") else command
            user, password = authenticate(self._app, self.db, signing)
            ctx.with_resource(self._app.acting_as(user, password))
            self.password = password
        return self._app


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.find_object(Session).json = True  # type: ignore[union-attr]


def json_option(f: F) -> F:
    """`--json` accepted after the command as well as before it."""
    return click.option("--json", is_flag=True, expose_value=False, is_eager=True,
                        callback=_set_json, help="Print exactly one JSON document.")(f)


pass_session = click.make_pass_decorator(Session)

#: Top-level commands and where they live; modules load only when their command runs, which
#: keeps start-up (SPEC §7 P1) lean.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("capa.cli.init", "init"),
    "demo": ("capa.cli.init", "demo"),
    "store": ("capa.cli.store", "store"),
    "nc": ("capa.cli.nc", "nc"),
    "ca": ("capa.cli.ca", "ca"),
    "history": ("capa.cli.records", "history"),
    "overdue": ("capa.cli.records", "overdue"),
    "user": ("capa.cli.users", "user"),
    "login": ("capa.cli.users", "login"),
    "logout": ("capa.cli.users", "logout"),
    "whoami": ("capa.cli.users", "whoami"),
    "validate": ("capa.cli.validate", "validate"),
    "readmodels": ("capa.cli.reports", "readmodels"),
    "import": ("capa.cli.intake", "import_"),
    "export": ("capa.cli.intake", "export"),
    "report": ("capa.cli.reports", "report"),
    "dashboard": ("capa.cli.reports", "dashboard"),
    "management-review": ("capa.cli.reports", "management_review"),
    "audit": ("capa.cli.audit", "audit"),
    "evidence": ("capa.cli.evidence", "evidence"),
    "serve": ("capa.cli.serve", "serve"),
    "notify": ("capa.cli.notify", "notify"),
    "webhook": ("capa.cli.webhook", "webhook"),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (Click's documented pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            import importlib

            module, attribute = COMMANDS[cmd_name]
            command: click.Command = getattr(importlib.import_module(module), attribute)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog=EXIT_CODES_HELP)
@click.option("--db", envvar="CAPA_DB", default="capa.db", metavar="TARGET",
              help="Store: a SQLite file path or a postgresql:// URI (env CAPA_DB; default: "
                   "the store of your `capa login` session, else capa.db).")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON document.")
@click.version_option(capa.__version__, "--version", prog_name="capa")
@click.pass_context
def cli(ctx: click.Context, db: str, as_json: bool) -> None:
    """capa: nonconformities and corrective actions with a verifiable audit trail.

    Every change is an immutable event: the history is the audit trail. The acting user logs
    in with `capa login`, or gives CAPA_USER and CAPA_PASSWORD, or is prompted.

    \b
    Example:
      capa init --admin mhernandez --full-name "Maria Hernandez" --org "Acme Medical"
      CAPA_USER=jchen CAPA_PASSWORD=... capa nc raise --title "Cracked housing" \\
          --description "Found at final inspection" --source process --severity major
    """
    given = ctx.get_parameter_source("db") in (click.core.ParameterSource.COMMANDLINE,
                                                click.core.ParameterSource.ENVIRONMENT)
    ctx.obj = Session(db, as_json, db_given=given)


#: What undecodable argument bytes become (PEP 383 surrogateescape).
_UNDECODED = re.compile("[\udc80-\udcff]")


def _wants_json(argv: Sequence[str]) -> bool:
    args = list(argv)
    if "--" in args:
        args = args[: args.index("--")]
    return "--json" in args


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the command; map every failure to a one-line message and exit code."""
    from capa.cli.output import error

    args = list(sys.argv[1:] if argv is None else argv)
    _process["entry"] = argv is None
    as_json = _wants_json(args)
    undecodable = next((a for a in args if _UNDECODED.search(a)), None)
    if undecodable is not None:
        # Bytes that are not UTF-8 reach Python as lone surrogates, which no store, file or
        # terminal can take: refused here, before anything is opened or written.
        error(as_json, 2, f"the argument {undecodable!r} is not valid UTF-8 text; give it in "
                          "UTF-8")
        sys.exit(2)
    try:
        code = cli.main(args=args, prog_name="capa", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except CapaError as exc:
        status = exit_code(exc)
        error(as_json, status, str(exc), exc.rule)
        sys.exit(status)
    except click.UsageError as exc:
        hint = f" (see: capa {exc.ctx.command_path.partition(' ')[2]} --help)".replace(
            "capa  --help", "capa --help") if exc.ctx else ""
        error(as_json, 2, exc.format_message() + hint)
        sys.exit(2)
    except click.ClickException as exc:
        error(as_json, 2, exc.format_message())
        sys.exit(2)
    except click.Abort:
        error(as_json, 1, "aborted")
        sys.exit(1)
    except KeyboardInterrupt:
        error(as_json, 1, "interrupted; nothing further was written")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: never a traceback
        if os.environ.get("CAPA_DEBUG"):
            raise
        from capa.app.store import storage_failure

        # A busy, lost or refused store: a conflict (5) or an unavailable store (3).
        failure = storage_failure(exc)
        if failure is not None:
            status = exit_code(failure)
            error(as_json, status, str(failure))
            sys.exit(status)
        error(as_json, 1, f"unexpected error ({type(exc).__name__}): {exc}")
        sys.exit(1)
