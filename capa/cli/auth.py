"""Who is acting on the command line: environment variables, a `capa login` session, a prompt.

Session design. `capa login` checks the password, draws a random 256-bit token and records
only its SHA-256 in the store (a UserLoggedIn event on the user's record, and a row of the
store's session table that holds the time of its last use). The token itself is written to
`session.json` under CAPA_SESSION_DIR (default ~/.config/capa), created with mode 0600,
together with the user id and the store it belongs to. A command presenting the session is
accepted only if the store still holds the token's hash (logout, password change, lock and
deactivation all remove it), the login is less than 8 hours old (the time comes from the
store's event) and the store saw the session used less than 15 minutes ago; each accepted use
moves that time in the store. Nothing in the file sets either limit, so restoring or editing
it cannot revive a session. A stolen store yields no usable token, and a copied file is
useless against another store or after logout.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from capa.app.permissions import SIGNING_COMMANDS
from capa.domain.errors import InvalidInput, NotPermitted

if TYPE_CHECKING:
    from capa.app.application import CapaApplication

#: Commands that ask for the password again even inside a session (`user add` signs the new
#: user's key with the administrator's; `user grant`, `revoke`, `unlock`, `deactivate` and
#: `passwd` sign the change).
REAUTHENTICATING_COMMANDS = SIGNING_COMMANDS | {"user passwd", "user add", "user grant",
                                                 "user revoke", "user unlock",
                                                 "user deactivate"}

NOT_LOGGED_IN = ("not logged in: run `capa login`, or set CAPA_USER and CAPA_PASSWORD "
                 "(automation)")


def session_path() -> Path:
    folder = os.environ.get("CAPA_SESSION_DIR") or Path.home() / ".config" / "capa"
    return Path(folder) / "session.json"


def store_key(target: str) -> str:
    """The store a session belongs to: a file by its absolute path, a server store by its URI
    without the password (the session file never holds a database password)."""
    if "://" not in target:
        return str(Path(target).resolve())
    from capa.app.storecopy import target_display

    return target_display(target)


def reopenable(target: str) -> str | None:
    """The target as a later command may open it again without --db: a file by its absolute
    path, a server store by its URI when that holds no password (None otherwise: the session
    file never holds a database password, so such a store is named with --db or CAPA_DB)."""
    if "://" not in target:
        return str(Path(target).resolve())
    if target.startswith(("http://", "https://")):
        return target  # a server (SPEC §11): its address holds no secret
    from capa.adapters.target import parse_target

    try:
        parsed = parse_target(target)
    except ValueError:
        return None
    return None if parsed.env.get("POSTGRES_PASSWORD") else parsed.display


def session_store() -> str | None:
    """The store of the session on this machine, if it can be opened again without --db."""
    data = read_session()
    if not data:
        return None
    target = data.get("target")
    if target is None and isinstance(data.get("store"), str) and "://" not in data["store"]:
        target = data["store"]  # a session file written before the target was kept
    return target if isinstance(target, str) and target else None


def session_server_store() -> str | None:
    """The store of the session, as it may be printed, when it is a server store that cannot be
    opened again without --db (its URI holds a password)."""
    data = read_session()
    store = data.get("store") if data else None
    if data is None or data.get("target") or not isinstance(store, str) or "://" not in store:
        return None
    return store


def write_session(target: str, user: str, token: str, started_at: str) -> Path:
    path = session_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = {"user": user, "store": store_key(target), "token": token,
            "started_at": started_at}
    again = reopenable(target)
    if again is not None:
        data["target"] = again
    # Created 0600 from the start: there is no moment at which others could read the token.
    if path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    return path


def read_session() -> dict[str, Any] | None:
    path = session_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def remove_session() -> None:
    session_path().unlink(missing_ok=True)


def interactive() -> bool:
    return sys.stdin.isatty()


def prompt_password(label: str = "Password") -> str:
    return str(click.prompt(label, hide_input=True, err=True))


def env_credentials() -> tuple[str, str]:
    return (os.environ.get("CAPA_USER", "").strip().lower(),
            os.environ.get("CAPA_PASSWORD", ""))


def authenticate(app: CapaApplication, target: str, command: str) -> tuple[str, str | None]:
    """The acting user's id and the password to check again when signing (None when the
    command was authenticated by a session and none was presented)."""
    token = os.environ.get("CAPA_TOKEN", "").strip()
    if token:
        # A service account's API token (SPEC §11): a machine, which never signs.
        return app.service_accounts.resume_token(token), None
    user, password = env_credentials()
    if user and password:
        return app.identity.authenticate(user, password), password
    session = read_session()
    if session and session.get("store") == store_key(target) and user in ("", session["user"]):
        try:
            acting = app.identity.resume_session(str(session["user"]), str(session["token"]))
        except NotPermitted:
            remove_session()  # the store ended it: the file can never serve again
            raise
        again = password or None
        if again is None and command in REAUTHENTICATING_COMMANDS and interactive():
            again = prompt_password("Password (to sign)")
        return acting, again
    if interactive():
        user = user or str(click.prompt("User id", err=True)).strip().lower()
        password = prompt_password()
        return app.identity.authenticate(user, password), password
    raise NotPermitted(NOT_LOGGED_IN)


def login_credentials() -> tuple[str, str]:
    """User id and password for `capa login`: the environment, else the prompt."""
    user, password = env_credentials()
    if user and password:
        return user, password
    if not interactive():
        raise NotPermitted("no credentials: set CAPA_USER and CAPA_PASSWORD, or run "
                           "`capa login` in a terminal")
    user = user or str(click.prompt("User id", err=True)).strip().lower()
    return user, prompt_password()


def new_password(confirm: bool = True) -> str:
    """A new password from CAPA_NEW_PASSWORD, else typed twice at the prompt."""
    given = os.environ.get("CAPA_NEW_PASSWORD")
    if given:
        return given
    if not interactive():
        raise InvalidInput("set CAPA_NEW_PASSWORD, or run this in a terminal to be prompted")
    return str(click.prompt("New password", hide_input=True, confirmation_prompt=confirm,
                            err=True))
