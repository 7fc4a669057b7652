"""`onramp webhooks …`: Stripe's events as this service stored them."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import click

from service.commands import EXIT_FAILURE, TIME, reports_database_errors, with_database
from service.webhooks import DEFAULT_BATCH_SIZE

if TYPE_CHECKING:
    from service.database import Database
    from service.settings import Settings
    from service.webhooks.replay import Replayed
    from service.webhooks.retention import Pruned


@click.group()
def webhooks() -> None:
    """Stripe's events as this service stored them."""


@webhooks.command("replay")
@click.option("--since", type=TIME, help="Events received at or after (UTC).")
@click.option("--event", "event_ids", multiple=True, help="An event id (repeatable).")
@click.option("--dry-run", is_flag=True, help="Report what would change; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@reports_database_errors
def replay_webhooks(
    since: datetime | None, event_ids: tuple[str, ...], dry_run: bool, as_json: bool
) -> None:
    """Re-apply stored events to their sessions (safe to run again)."""
    from service.audit.actions import Action, selection, time_range
    from service.audit.trail import command_audit
    from service.reports import print_report, progress_bar
    from service.webhooks.replay import replay_events

    target = selection(*event_ids, time_range(since) if since else None)

    async def run(_: Settings, database: Database) -> list[Replayed]:
        # One row for the run, once it is over: each event is its own transaction.
        async with command_audit(database, Action.WEBHOOKS_REPLAY, target) as audit:
            with progress_bar("Replaying events", not as_json) as progress:
                replayed = await replay_events(
                    database,
                    since=since,
                    event_ids=list(event_ids) or None,
                    dry_run=dry_run,
                    progress=progress,
                )
            audit.summarise((result.outcome for result in replayed), dry_run=dry_run)
            return replayed

    results = with_database(run)
    title = "Webhook replay (dry run: nothing changed)" if dry_run else "Webhook replay"
    print_report(
        results,
        [
            ("event_id", "Event"),
            ("type", "Type"),
            ("onramp_session_id", "Session"),
            ("outcome", "Outcome"),
            ("error", "Error"),
        ],
        as_json=as_json,
        title=title,
    )
    if any(result.outcome == "failed" for result in results):
        sys.exit(EXIT_FAILURE)


@webhooks.command("prune")
@click.option(
    "--older-than",
    "days",
    type=click.IntRange(min=1),
    required=True,
    metavar="DAYS",
    help="Drop events received more than DAYS days ago that no session needs.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Events deleted per statement (each holds its locks only that long).",
)
@click.option("--dry-run", is_flag=True, help="Count what would go; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@reports_database_errors
def prune_webhooks(days: int, batch_size: int, dry_run: bool, as_json: bool) -> None:
    """Drop old events of settled sessions (safe to run again; see docs/operations.md).

    Kept whatever their age: events never processed successfully, events of sessions
    not settled yet, and events of unknown sessions younger than 30 days.
    """
    from service.audit.actions import Action, Outcome, time_range
    from service.audit.trail import command_audit
    from service.columns import utcnow
    from service.reports import print_report, progress_bar
    from service.webhooks.retention import prune_events

    now = utcnow()
    verb = "would be deleted" if dry_run else "deleted"

    async def run(_: Settings, database: Database) -> list[Pruned]:
        # One row for the run, once it is over: each batch is its own statement.
        target = time_range(None, now - timedelta(days=days))
        async with command_audit(database, Action.WEBHOOKS_PRUNE, target) as audit:
            with progress_bar("Pruning events", not as_json and not dry_run) as progress:
                pruned = await prune_events(
                    database,
                    older_than_days=days,
                    now=now,
                    dry_run=dry_run,
                    batch_size=batch_size,
                    progress=progress,
                )
            gone, kept = _counted(pruned)
            audit.conclude(
                Outcome.DRY_RUN if dry_run else Outcome.OK, f"{gone} {verb}, {kept} kept"
            )
            return pruned

    results = with_database(run)
    gone, kept = _counted(results)
    print_report(
        results,
        [("outcome", "Outcome"), ("reason", "Reason"), ("events", "Events")],
        as_json=as_json,
        title="Webhook prune (dry run: nothing deleted)" if dry_run else "Webhook prune",
        summary=f"events older than {days} days: {gone} {verb}, {kept} kept",
    )


def _counted(pruned: list[Pruned]) -> tuple[int, int]:
    """Events that went (or would go), and old events kept."""
    return pruned[0].events, sum(result.events for result in pruned[1:])
