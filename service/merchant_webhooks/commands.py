"""`onramp endpoints …`: the merchant's webhook endpoints from the command line, as the
operators' routes have them, each change in the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from service.commands import TIME, reports_database_errors, with_database

if TYPE_CHECKING:
    from service.database import Database
    from service.merchant_webhooks.models import EndpointRow
    from service.settings import Settings

_JSON = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
_COLUMNS = [
    ("id", "Endpoint"),
    ("url", "URL"),
    ("events", "Events"),
    ("status", "Status"),
    ("created_at", "Created"),
]


@dataclass(frozen=True)
class Shown:
    id: str
    url: str
    events: str
    status: str
    created_at: str
    description: str | None = None


@click.group()
def endpoints() -> None:
    """Webhook endpoints of the merchant's own backend (signed, retried for days)."""


@endpoints.command("add")
@click.argument("url")
@click.option("--events", "events", multiple=True, help="An event type it takes (repeatable).")
@click.option("--description", default=None, help="What the endpoint is, for operators.")
@_JSON
@reports_database_errors
def add_endpoint(url: str, events: tuple[str, ...], description: str | None, as_json: bool) -> None:
    """Register URL; prints its signing secret, which is shown this once."""
    from service.audit.actions import Action
    from service.audit.trail import command_audit
    from service.merchant_webhooks import endpoints as service
    from service.merchant_webhooks import schemas

    async def run(settings: Settings, database: Database) -> EndpointRow:
        async with command_audit(database, Action.ENDPOINTS_ADD, None) as audit:
            row = await service.add(
                database,
                audit,
                url,
                list(events) or None,
                description,
                deployed=settings.server.is_deployed,
            )
        return row

    row = _failing_clearly(run)
    if as_json:
        _print_json(schemas.created(row))
        return
    # Lines, not a table: a table's columns would cut the id and the secret to the
    # terminal's width, and the secret is shown this once.
    shown = _shown(row)
    click.echo(f"Endpoint added: {shown.id}\nURL: {shown.url}\nEvents: {shown.events}")
    click.echo(f"Signing secret (shown this once): {row.secret}")


@endpoints.command("list")
@_JSON
@reports_database_errors
def list_endpoints(as_json: bool) -> None:
    """Every endpoint, without secrets."""
    from service.merchant_webhooks import endpoints as service
    from service.merchant_webhooks import schemas

    async def run(settings: Settings, database: Database) -> list[EndpointRow]:
        return await service.listed(database)

    rows = with_database(run, reads_only=True)
    if as_json:
        _print_json([schemas.endpoint(row) for row in rows])
        return
    _print([_shown(row) for row in rows], as_json, "Webhook endpoints")


@endpoints.command("remove")
@click.argument("endpoint_id")
@_JSON
@reports_database_errors
def remove_endpoint(endpoint_id: str, as_json: bool) -> None:
    """Remove an endpoint, its deliveries still due and its delivery log."""
    from service.audit.actions import Action
    from service.audit.trail import command_audit
    from service.merchant_webhooks import endpoints as service

    async def run(settings: Settings, database: Database) -> dict[str, Any]:
        async with command_audit(database, Action.ENDPOINTS_REMOVE, endpoint_id) as audit:
            await service.remove(database, audit, endpoint_id)
        return {"id": endpoint_id, "outcome": "removed"}

    _print_plain(_failing_clearly(run), as_json)


@endpoints.command("rotate")
@click.argument("endpoint_id")
@_JSON
@reports_database_errors
def rotate_secret(endpoint_id: str, as_json: bool) -> None:
    """A new signing secret, printed this once; the previous one signs too for 24 h."""
    from service.audit.actions import Action
    from service.audit.trail import command_audit
    from service.merchant_webhooks import endpoints as service

    async def run(settings: Settings, database: Database) -> dict[str, Any]:
        async with command_audit(database, Action.ENDPOINTS_ROTATE, endpoint_id) as audit:
            secret = await service.rotate(database, audit, endpoint_id)
        return {"id": endpoint_id, "secret": secret}

    _print_plain(_failing_clearly(run), as_json)


@endpoints.command("enable")
@click.argument("endpoint_id")
@_JSON
@reports_database_errors
def enable_endpoint(endpoint_id: str, as_json: bool) -> None:
    """Enable an endpoint disabled for failing; its deliveries still due resume.

    Events written while it was disabled were not given to it: `replay --since T
    --endpoint ID` sends them."""
    from service.audit.actions import Action
    from service.audit.trail import command_audit
    from service.merchant_webhooks import endpoints as service
    from service.merchant_webhooks import schemas

    async def run(settings: Settings, database: Database) -> EndpointRow:
        async with command_audit(database, Action.ENDPOINTS_ENABLE, endpoint_id) as audit:
            return await service.enable(database, audit, endpoint_id)

    row = _failing_clearly(run)
    if as_json:
        _print_json(schemas.endpoint(row))
        return
    _print_plain({"id": row.id, "status": row.status}, as_json=False)


@endpoints.command("replay")
@click.option("--since", type=TIME, required=True, help="Events written at or after this time.")
@click.option("--endpoint", "endpoint_id", default=None, help="Only to this endpoint.")
@click.option("--dry-run", is_flag=True, help="Count what would be sent; send nothing.")
@_JSON
@reports_database_errors
def replay_events(since: datetime, endpoint_id: str | None, dry_run: bool, as_json: bool) -> None:
    """Send events again, with their own ids, to every enabled endpoint taking them."""
    from service.audit.actions import Action, Outcome, selection, time_range
    from service.audit.trail import command_audit
    from service.merchant_webhooks import endpoints as service
    from service.merchant_webhooks.endpoints import Replayed
    from service.reports import print_report

    target = selection(time_range(since), endpoint_id)

    async def run(settings: Settings, database: Database) -> list[Replayed]:
        async with command_audit(database, Action.ENDPOINTS_REPLAY, target) as audit:
            replayed = await service.replay(
                database,
                since,
                endpoint_id,
                dry_run=dry_run,
                retention_days=settings.retention.outgoing_webhook_days,
            )
            events = sum(r.events for r in replayed)
            verb = "would be sent again" if dry_run else "due again"
            audit.conclude(
                Outcome.DRY_RUN if dry_run else Outcome.OK, f"{events} deliveries {verb}"
            )
            return replayed

    results = _failing_clearly(run)
    print_report(
        results,
        [("endpoint_id", "Endpoint"), ("events", "Events")],
        as_json=as_json,
        title="Replay (dry run: nothing sent)" if dry_run else "Replay",
        summary=f"{sum(r.events for r in results)} deliveries"
        + (" would be due again" if dry_run else " due again now"),
    )


def _failing_clearly(run: Any) -> Any:
    """The command's work; a refusal (a bad URL, an unknown id) is one line and exit 1."""
    from service.commands import fail
    from service.errors import OnrampError

    try:
        return with_database(run)
    except OnrampError as error:
        fail(f"{error.code}: {error.detail}")


def _shown(row: Any) -> Shown:
    from service.columns import rfc3339
    from service.merchant_webhooks.schemas import endpoint

    shown = endpoint(row)
    return Shown(
        shown.id,
        shown.url,
        ",".join(shown.events),
        shown.status,
        rfc3339(shown.created_at),
        shown.description,
    )


def _print(rows: list[Shown], as_json: bool, title: str) -> None:
    from service.reports import print_report

    print_report(rows, _COLUMNS, as_json=as_json, title=title, summary=f"{len(rows)} endpoints")


def _print_json(shown: Any) -> None:
    """The routes' own JSON (camelCase, `events` a list), so a script reads one shape."""
    import msgspec

    click.echo(msgspec.json.format(msgspec.json.encode(shown), indent=2).decode())


def _print_plain(result: dict[str, Any], as_json: bool) -> None:
    import json

    click.echo(json.dumps(result) if as_json else " ".join(str(v) for v in result.values()))
