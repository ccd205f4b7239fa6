"""`capa user …`, `capa login`, `capa logout`, `capa whoami`: accounts and sessions."""

from __future__ import annotations

from typing import Any

import click

from capa.cli.main import Session, json_option, pass_session
from capa.cli.output import emit, table, written


@click.group()
def user() -> None:
    """Manage user accounts and roles (admin), or change your own password.

    \b
    Roles: admin, quality, owner, reporter, auditor.
    Example:
      capa user add jchen --full-name "Jia Chen" --role quality
    """


@user.command("add")
@click.argument("user_id", metavar="USER")
@click.option("--full-name", required=True, help="Printed name shown on signatures.")
@click.option("--role", "roles", multiple=True, required=True, metavar="ROLE",
              help="admin, quality, owner, reporter or auditor (repeatable).")
@click.option("--email", metavar="ADDRESS", help="Where reminders go (capa notify).")
@json_option
@pass_session
def add(session: Session, user_id: str, full_name: str, roles: tuple[str, ...],
        email: str | None) -> None:
    """Add a user; the initial password comes from CAPA_NEW_PASSWORD or the prompt.

    The new user's signing key is endorsed with yours, so your password is asked again even
    inside a session (CAPA_PASSWORD or the prompt).

    \b
    Example:
      CAPA_NEW_PASSWORD=... capa user add apatel --full-name "Anil Patel" --role owner \\
          --email anil.patel@example.com
    """
    from capa.cli.auth import new_password

    app = session.app()
    # Asked for only once the operation has admitted the acting user.
    result = app.identity.add_user(user_id, full_name=full_name, roles=roles,
                                   password=new_password, email=email)
    emit(session.json, result, written)


@user.command("add-service")
@click.argument("user_id", metavar="ID")
@click.option("--name", "full_name", required=True, help="What the account stands for.")
@click.option("--role", "roles", multiple=True, required=True, metavar="ROLE",
              help="reporter or quality (repeatable).")
@json_option
@pass_session
def add_service(session: Session, user_id: str, full_name: str,
                roles: tuple[str, ...]) -> None:
    """Add a service account for a machine (an ERP, MES or complaint system): no password and
    no signature, roles reporter or quality; it acts with API tokens (capa user token issue).

    Signed with your key, so your password is asked again even inside a session
    (CAPA_PASSWORD or the prompt).

    \b
    Example:
      capa user add-service mes-line3 --name "MES line 3" --role reporter
    """
    result = session.app().service_accounts.add_service(user_id, full_name=full_name,
                                                        roles=roles)
    emit(session.json, result, written)


@user.group("token")
def token() -> None:
    """API tokens of service accounts (admin): issue, list, revoke.

    \b
    Example:
      capa user token issue mes-line3 --label "line 3 PLC" --expires 2027-06-30
    """


@token.command("issue")
@click.argument("user_id", metavar="ACCOUNT")
@click.option("--label", help="What the token is for, shown by token list.")
@click.option("--expires", metavar="YYYY-MM-DD", help="Last day the token is valid (UTC).")
@json_option
@pass_session
def token_issue(session: Session, user_id: str, label: str | None,
                expires: str | None) -> None:
    """Issue an API token to a service account and print it once: the store keeps only its
    SHA-256. Signed with your key (your password is asked again).

    The machine sends it as `Authorization: Bearer <token>`, or as CAPA_TOKEN to the command
    line.

    \b
    Example:
      capa user token issue mes-line3 --label "line 3 PLC" --expires 2027-06-30
    """
    result = session.app().service_accounts.issue_token(user_id, label=label, expires=expires)
    emit(session.json, result,
         lambda d: f"{d['id']}: token {d['token_id']} issued"
                   f"{' until ' + d['expires_on'] if d.get('expires_on') else ''}; "
                   f"shown only this once:\n{d['token']}")


@token.command("list")
@click.argument("user_id", metavar="ACCOUNT")
@json_option
@pass_session
def token_list(session: Session, user_id: str) -> None:
    """The tokens of a service account and their state (never the token, nor its digest).

    \b
    Example:
      capa user token list mes-line3
    """
    emit(session.json, session.app().service_accounts.list_tokens(user_id),
         lambda rows: table([[r["token_id"], r["label"], r["status"], r["issued_at"],
                              r["expires_on"], r["revoked_at"]] for r in rows],
                            ["token", "label", "status", "issued", "expires", "revoked"]))


@token.command("revoke")
@click.argument("user_id", metavar="ACCOUNT")
@click.argument("token_id", metavar="TOKEN_ID")
@click.option("--reason", required=True, help="Why the token is revoked (recorded).")
@json_option
@pass_session
def token_revoke(session: Session, user_id: str, token_id: str, reason: str) -> None:
    """Revoke an API token for good, with a reason; signed with your key (your password is
    asked again).

    \b
    Example:
      capa user token revoke mes-line3 T1 --reason "PLC replaced"
    """
    emit(session.json, session.app().service_accounts.revoke_token(user_id, token_id,
                                                                   reason=reason), written)


@user.command("email")
@click.argument("user_id", metavar="USER")
@click.argument("address", metavar="ADDRESS")
@json_option
@pass_session
def email(session: Session, user_id: str, address: str) -> None:
    """Set or change the e-mail address a user's reminders go to (capa notify).

    An administrator sets anyone's; every other user sets their own.

    \b
    Example:
      capa user email apatel anil.patel@example.com
    """
    emit(session.json, session.app().identity.set_email(user_id, address), written)


@user.command("grant")
@click.argument("user_id", metavar="USER")
@click.argument("role")
@json_option
@pass_session
def grant(session: Session, user_id: str, role: str) -> None:
    """Give a user one more role, signed with your key (your password is asked again even
    inside a session: CAPA_PASSWORD or the prompt).

    \b
    Example:
      capa user grant apatel quality
    """
    emit(session.json, session.app().identity.grant_role(user_id, role), written)


@user.command("revoke")
@click.argument("user_id", metavar="USER")
@click.argument("role")
@json_option
@pass_session
def revoke(session: Session, user_id: str, role: str) -> None:
    """Take a role away from a user, signed with your key (your password is asked again even
    inside a session: CAPA_PASSWORD or the prompt).

    \b
    Example:
      capa user revoke apatel quality
    """
    emit(session.json, session.app().identity.revoke_role(user_id, role), written)


@user.command("passwd")
@json_option
@pass_session
def passwd(session: Session) -> None:
    """Change your own password, signed with your key: the current one is checked
    (CAPA_PASSWORD or the prompt), the new one comes from CAPA_NEW_PASSWORD or the prompt.

    \b
    Example:
      capa user passwd
    """
    from capa.cli.auth import interactive, new_password, prompt_password
    from capa.domain.errors import NotPermitted

    app = session.app()

    def current() -> str:
        if session.password is not None:
            return session.password
        if not interactive():
            raise NotPermitted("your current password is needed: set CAPA_PASSWORD")
        return prompt_password("Current password")

    # Both are asked for only once the operation has admitted the acting user.
    emit(session.json, app.identity.change_password(current, new_password), written)


@user.command("reset-password")
@click.argument("user_id", metavar="USER")
@click.option("--reason", required=True, help="Why (e.g. the user lost their password).")
@json_option
@pass_session
def reset_password(session: Session, user_id: str, reason: str) -> None:
    """Reset another user's lost password (21 CFR 11.300(c)): a temporary password from
    CAPA_NEW_PASSWORD or the prompt, which the user must change (capa user passwd) before
    anything else. The user gets a new signing key; the reset is signed with your key (your
    password is asked again even inside a session: CAPA_PASSWORD or the prompt). The account is
    unlocked and its sessions end; signatures made with the old key stay verifiable.

    \b
    Example:
      CAPA_NEW_PASSWORD=... capa user reset-password apatel --reason "forgot the password"
    """
    from capa.cli.auth import new_password

    app = session.app()
    # Asked for only once the operation has admitted the acting user.
    result = app.identity.reset_password(user_id, password=new_password, reason=reason)
    emit(session.json, result,
         lambda d: f"{d['id']}: password reset (version {d['version']}); {d['id']} must choose "
                   "their own at the next login (capa user passwd)")


@user.command("unlock")
@click.argument("user_id", metavar="USER")
@json_option
@pass_session
def unlock(session: Session, user_id: str) -> None:
    """Unlock an account locked after five failed password checks, signed with your key (your
    password is asked again even inside a session: CAPA_PASSWORD or the prompt).

    \b
    Example:
      capa user unlock apatel
    """
    emit(session.json, session.app().identity.unlock_user(user_id), written)


@user.command("deactivate")
@click.argument("user_id", metavar="USER")
@json_option
@pass_session
def deactivate(session: Session, user_id: str) -> None:
    """Deactivate an account: it keeps its history but can no longer log in or act. Signed
    with your key (your password is asked again even inside a session: CAPA_PASSWORD or the
    prompt).

    \b
    Example:
      capa user deactivate tokafor
    """
    emit(session.json, session.app().identity.deactivate_user(user_id), written)


@user.command("list")
@json_option
@pass_session
def list_users(session: Session) -> None:
    """Every account with its roles and status (never a password hash).

    \b
    Example:
      capa user list
    """
    emit(session.json, session.app().identity.list_users(), _users_text)


def _users_text(rows: list[dict[str, Any]]) -> str:
    return table([[r["user"], r["full_name"], ", ".join(r["roles"]), r["status"], r.get("email"),
                   r.get("kind", "person")] for r in rows],
                 ["user", "full name", "roles", "status", "e-mail", "kind"])


@click.command()
@json_option
@pass_session
def login(session: Session) -> None:
    """Open a session for this store (15 minutes idle, 8 hours at most).

    The user id and password come from CAPA_USER and CAPA_PASSWORD, else the prompt.

    \b
    Example:
      capa --db quality.db login
    """
    from capa.cli.auth import login_credentials, write_session

    app = session.app()
    user_id, password = login_credentials()
    opened = app.identity.login(user_id, password)
    path = write_session(session.db, opened["user"], opened["token"], opened["started_at"])
    emit(session.json, {"user": opened["user"], "started_at": opened["started_at"],
                        "session_file": str(path)},
         lambda d: f"logged in as {d['user']} (session until idle 15 min, at most 8 h)")


@click.command()
@json_option
@pass_session
def logout(session: Session) -> None:
    """End the session of this terminal; the store forgets its token.

    \b
    Example:
      capa logout
    """
    from capa.app.store import open_store
    from capa.cli.auth import read_session, remove_session, store_key

    data = read_session()
    ended = None
    if data and data.get("store") == store_key(session.db):
        if session.db.startswith(("http://", "https://")):
            from capa.cli.remote import RemoteApplication

            RemoteApplication(session.db).identity.logout(str(data["user"]), str(data["token"]))
        else:
            open_store(session.db).identity.logout(str(data["user"]), str(data["token"]))
        ended = str(data["user"])
    if data:
        remove_session()
    emit(session.json, {"logged_out": ended},
         lambda d: f"logged out {d['logged_out']}" if d["logged_out"] else "no session")


@click.command()
@json_option
@pass_session
def whoami(session: Session) -> None:
    """Who is acting: user id, printed name, roles.

    \b
    Example:
      capa whoami
    """
    emit(session.json, session.app().identity.whoami(),
         lambda d: f"{d['user']} ({d['full_name']}); roles: {', '.join(d['roles']) or 'none'}")
