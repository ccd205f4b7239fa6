"""`capa webhook`: outgoing webhooks that tell other systems (ERP, complaint handling) what
happened to records, signed, retried and recorded (SPEC §11)."""

from __future__ import annotations

from typing import Any

import click

from capa.cli.main import Session, json_option, pass_session
from capa.cli.output import emit, table, written


@click.group()
def webhook() -> None:
    """Tell other systems about record events: each subscribed event is POSTed as signed JSON,
    retried with back-off, and every delivery recorded (docs/server.md).

    \b
    Example:
      capa webhook add https://erp.example/capa --event nc.raised --event ca.closed
      capa webhook deliveries --failed
    """


@webhook.command("add")
@click.argument("url")
@click.option("--event", "events", multiple=True, required=True, metavar="TYPE",
              help="A record event to send (repeatable): nc.raised, nc.closed, ca.opened, "
                   "ca.closed, ... or nc.*, ca.*, * for every one.")
@click.option("--reason", default=None, help="Why the system is told (kept in the trail).")
@json_option
@pass_session
def add(session: Session, url: str, events: tuple[str, ...], reason: str | None) -> None:
    """Subscribe an http(s) address to record events (admin). The signing secret is printed
    this once: give it to the receiving system, which checks X-Capa-Signature with it. capa
    keeps no copy; the server derives it from its webhook key (CAPA_WEBHOOK_KEY).

    \b
    Example:
      capa webhook add https://erp.example/capa/events --event nc.raised --event nc.closed \\
          --reason "ERP holds the lots of raised NCs"
    """
    result = session.app().webhooks.add(url, events=list(events), reason=reason)
    emit(session.json, result, _added_text)


def _added_text(data: dict[str, Any]) -> str:
    shown = {k: v for k, v in data.items() if k in ("id", "status", "version", "url", "events")}
    return (f"{written(shown)}\nsecret (shown once; the receiver verifies X-Capa-Signature "
            f"with it): {data['secret']}")


@webhook.command("remove")
@click.argument("webhook_id", metavar="ID")
@click.option("--reason", required=True, help="Why the system is no longer told.")
@json_option
@pass_session
def remove(session: Session, webhook_id: str, reason: str) -> None:
    """Stop sending to a webhook (admin); its deliveries stay listed.

    \b
    Example:
      capa webhook remove WEBHOOK-1 --reason "ERP replaced"
    """
    result = session.app().webhooks.remove(webhook_id, reason=reason)
    emit(session.json, result, lambda d: written({k: d[k] for k in ("id", "status",
                                                                    "version")}))


@webhook.command("list")
@json_option
@pass_session
def list_(session: Session) -> None:
    """List the webhooks, active and removed.

    \b
    Example:
      capa webhook list
    """
    found = session.app().webhooks.list_webhooks()
    emit(session.json, found, lambda rows: table(
        [[r["id"], r["status"], r["url"], " ".join(r["events"]), r["added_at"],
          r["added_by"]] for r in rows],
        ["id", "status", "url", "events", "added at", "by"], whole=("url",)))


@webhook.command("deliveries")
@click.argument("webhook_id", metavar="[ID]", required=False)
@click.option("--failed", is_flag=True, help="Only the deliveries not (yet) delivered.")
@json_option
@pass_session
def deliveries(session: Session, webhook_id: str | None, failed: bool) -> None:
    """List the deliveries (of one webhook): event, record, outcome, attempts, last error.

    \b
    Example:
      capa webhook deliveries WEBHOOK-1 --failed
    """
    found = session.app().webhooks.deliveries(webhook_id, failed=failed)
    emit(session.json, found, _deliveries_text)


def _deliveries_text(rows: list[dict[str, Any]]) -> str:
    return table([[r["webhook"], r["position"], r["event"], r["record"], r["status"],
                   r["attempts"], r["http_status"], r["error"] or r["next_attempt_at"]
                   or r["delivered_at"]] for r in rows],
                 ["webhook", "position", "event", "record", "status", "attempts", "http",
                  "error / next attempt / delivered"])


@webhook.command("deliver")
@click.option("--dry-run", is_flag=True, help="List what would be sent; send and record "
                                              "nothing.")
@click.option("--retry-failed", is_flag=True,
              help="Try every failed delivery now: those waiting out their back-off and "
                   "those whose attempts are used up.")
@json_option
@pass_session
def deliver(session: Session, dry_run: bool, retry_failed: bool) -> None:
    """Send what is due now, once (quality or admin; e.g. from cron, where no `capa serve
    --webhooks-every` runs). Exit code 5 when a delivery failed: it is recorded, and tried
    again after its back-off.

    \b
    Example:
      capa webhook deliver
      capa webhook deliver --dry-run
    """
    from capa.domain.errors import Conflict

    report = session.app().webhooks.deliver(dry_run=dry_run, retry_failed=retry_failed)
    emit(session.json, report, _report_text)
    if report["failed"]:
        first = report["failed"][0]
        raise Conflict(f"{len(report['failed'])} deliveries failed ({first['id']}: "
                       f"{first['error']}); each is recorded and tried again after its "
                       "back-off")


def _report_text(report: dict[str, Any]) -> str:
    head = (f"{'dry run: ' if report['dry_run'] else ''}webhooks: "
            f"{len(report['delivered'])} delivered, {len(report['failed'])} failed, "
            f"{len(report['would_send'])} would be sent, {report['waiting']} waiting")
    rows = [{**r, "outcome": outcome} for outcome, key in
            (("delivered", "delivered"), ("FAILED", "failed"), ("would send", "would_send"))
            for r in report[key]]
    if not rows:
        return head
    return head + "\n" + _deliveries_text(rows)


def schedule_deliveries(store: Any, user: str, seconds: float) -> None:
    """Run `capa webhook deliver` as `user` every `seconds` in a background thread of `capa
    serve`, once the account is checked here (a wrong password or a role that may not deliver
    stops the start)."""
    import logging
    import os
    import threading

    from capa.domain.errors import CapaError

    password = os.environ.get("CAPA_PASSWORD", "")
    uid = store.identity.authenticate(user, password)
    with store.acting_as(uid, password):
        store.authorise("webhook deliver")
    log = logging.getLogger("capa.server.webhooks")

    def run() -> None:
        while True:
            try:
                with store.acting_as(uid, password):
                    report = store.webhooks.deliver()
                if report["delivered"] or report["failed"]:
                    log.warning("webhooks: %d delivered, %d failed, %d waiting",
                                len(report["delivered"]), len(report["failed"]),
                                report["waiting"])
            except CapaError as exc:
                log.warning("webhooks not delivered: %s", exc)
            except Exception:  # noqa: BLE001 - the server keeps serving; the next pass retries
                log.exception("webhook delivery failed")
            stop.wait(seconds)

    stop = threading.Event()
    threading.Thread(target=run, name="capa-webhooks", daemon=True).start()
