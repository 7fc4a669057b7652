"""`onramp retention run`: the retention job now, as the delivery worker runs it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from service.commands import reports_database_errors, with_database

if TYPE_CHECKING:
    from service.database import Database
    from service.retention.job import Cleared
    from service.settings import Settings


@click.group()
def retention() -> None:
    """What the service keeps, and for how long (docs/operations.md, retention policy)."""


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="Count what would go; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@reports_database_errors
def run_retention_command(dry_run: bool, as_json: bool) -> None:
    """Delete, in batches, what is past its retention: expired idempotency keys and
    nonces, old events no session needs, long-finished delivery checks. Never sessions.

    Safe to run again, and beside the service and its workers.
    """
    from service.audit.actions import Action, Outcome
    from service.audit.trail import command_audit
    from service.columns import utcnow
    from service.reports import print_report
    from service.retention.job import run_retention

    verb = "would be deleted" if dry_run else "deleted"

    async def run(settings: Settings, database: Database) -> list[Cleared]:
        # One row for the run, once it is over: each batch is its own statement. The
        # worker's scheduled runs are the service's own, not an operator's: no row.
        async with command_audit(database, Action.RETENTION_RUN, None) as audit:
            cleared = await run_retention(
                database, settings.retention, now=utcnow(), dry_run=dry_run
            )
            gone, kept = _counted(cleared)
            audit.conclude(
                Outcome.DRY_RUN if dry_run else Outcome.OK, f"{gone} rows {verb}, {kept} kept"
            )
            return cleared

    results = with_database(run)
    gone, kept = _counted(results)
    print_report(
        results,
        [("table", "Table"), ("outcome", "Outcome"), ("reason", "Reason"), ("rows", "Rows")],
        as_json=as_json,
        title="Retention (dry run: nothing deleted)" if dry_run else "Retention",
        summary=f"{gone} rows {verb}; {kept} old events kept for the sessions that need them",
    )


def _counted(cleared: list[Cleared]) -> tuple[int, int]:
    """Rows that went (or would go), and old events kept for their sessions."""
    gone = sum(c.rows for c in cleared if c.outcome != "kept")
    return gone, sum(c.rows for c in cleared if c.outcome == "kept")
