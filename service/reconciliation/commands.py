"""Our sessions and Stripe's brought into agreement.

`onramp reconcile`: do Stripe, this database and the chain agree on a range of sessions,
and what did the range sell? It only reads, from the replica when DATABASE_READ_URL
names one. `onramp sessions replay` and `onramp sessions import` (in the `sessions`
group that service/cli.py makes of these and onramp's `list`) bring Stripe's word here.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from service.commands import (
    EXIT_CONFIGURATION,
    EXIT_FAILURE,
    EXIT_UNAVAILABLE,
    TIME,
    fail,
    reports_database_errors,
    with_database,
)
from service.onramp.lifecycle import LIFECYCLE

if TYPE_CHECKING:
    from service.database import Database
    from service.reconciliation.gather import Compared
    from service.reconciliation.imports import SessionImported
    from service.reconciliation.replay import SessionReplayed
    from service.settings import Settings


@click.command("reconcile")
@click.option("--since", type=TIME, required=True, help="Sessions created at or after (UTC).")
@click.option("--until", type=TIME, help="Sessions created before (UTC; now).")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="csv: one row per session, for a spreadsheet.",
)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Report to FILE.")
@click.option(
    "--chart",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Daily volume by status, and drift, as a PNG.",
)
@click.option(
    "--metrics-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Drift gauges for node_exporter's textfile collector (docs/monitoring).",
)
@click.option("--concurrency", type=click.IntRange(1, 64), default=8, show_default=True)
@reports_database_errors
def reconcile_command(
    since: datetime,
    until: datetime | None,
    output_format: str,
    output: Path | None,
    chart: Path | None,
    metrics_file: Path | None,
    concurrency: int,
) -> None:
    """Compare every session of the range with Stripe and with the chain's delivery
    verdict, name each difference, total by day and status; exit 1 on drift, 3 when
    Stripe or the database could not be read (or only some of Stripe's sessions could
    not: the report has a stripe_malformed row for each)."""
    from service.errors import (
        DatabaseUnavailable,
        NotConfigured,
        Unprocessable,
        UpstreamUnavailable,
    )
    from service.onramp.stripe_client import StripeOnramp
    from service.reconciliation import report
    from service.reconciliation.gather import reconcile
    from service.reports import progress_bar

    start = since
    end = until or datetime.now(UTC) + timedelta(seconds=1)
    if end <= start:
        fail("--until must be after --since", EXIT_CONFIGURATION)

    async def run(settings: Settings, database: Database) -> list[Compared]:
        stripe = StripeOnramp(settings.stripe)
        stripe.require_configured()
        try:
            with progress_bar("Listing Stripe's sessions", output_format == "table") as progress:
                return await reconcile(
                    database,
                    stripe,
                    since=start,
                    until=end,
                    delivery_timeout=timedelta(seconds=settings.chain.delivery_timeout_seconds),
                    concurrency=concurrency,
                    progress=progress,
                )
        finally:
            await stripe.close()

    try:
        compared = with_database(run, reads_only=True, long_statements=True)
    except (UpstreamUnavailable, Unprocessable) as error:
        fail(f"Stripe: {error.detail}", EXIT_UNAVAILABLE)
    except NotConfigured as error:
        fail(error.detail, EXIT_CONFIGURATION)
    except DatabaseUnavailable as error:
        reason = str(error.__cause__ or error).strip().splitlines() or [error.detail]
        fail(f"database error: {reason[0]}", EXIT_UNAVAILABLE)
    _tell(compared, start, end, output_format, output)
    if metrics_file is not None:
        report.write_metrics(metrics_file, compared)
    if chart is not None:
        from service.reconciliation.chart import draw_chart

        draw_chart(chart, compared, f"Sessions {start:%Y-%m-%d} to {end:%Y-%m-%d}")
    _conclude(compared)


def _conclude(compared: list[Compared]) -> None:
    """Exit 1 on drift. Sessions Stripe sent malformed (`stripe_malformed`) are no
    drift found but a part of the answer that could not be read: a line says how many,
    and alone they exit 3, as an answer that could not be read at all does (which makes
    no report); the report and the metrics file are written either way."""
    from service.reconciliation.drift import STRIPE_MALFORMED

    unreadable = sum(1 for session in compared if STRIPE_MALFORMED in session.drift)
    drifted = any(set(session.drift) - {STRIPE_MALFORMED} for session in compared)
    reason = f"Stripe: {unreadable} of its sessions could not be read ({STRIPE_MALFORMED})"
    if unreadable and not drifted:
        fail(reason, EXIT_UNAVAILABLE)
    if unreadable:
        click.echo(f"onramp: {reason}", err=True)
    if drifted:
        sys.exit(EXIT_FAILURE)


def _tell(
    compared: list[Compared],
    start: datetime,
    end: datetime,
    output_format: str,
    output: Path | None,
) -> None:
    from rich.console import Console

    from service.reconciliation import report

    if output_format == "table" and output is None:
        report.as_table(compared, start, end, Console())
        return
    if output_format == "table" and output is not None:
        with output.open("w") as stream:
            report.as_table(compared, start, end, Console(file=stream, width=160))
        return
    text = (
        report.as_json(compared, start, end) if output_format == "json" else report.as_csv(compared)
    )
    if output is not None:
        output.write_text(text if text.endswith("\n") else text + "\n")
    else:
        click.echo(text)


@click.command("import")
@click.option("--since", type=TIME, required=True, help="Sessions created at or after (UTC).")
@click.option("--until", type=TIME, help="Sessions created before (UTC).")
@click.option("--dry-run", is_flag=True, help="Report what would be imported; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@reports_database_errors
def import_sessions_command(
    since: datetime, until: datetime | None, dry_run: bool, as_json: bool
) -> None:
    """Bring back sessions that Stripe has and this database lost (after a restore),
    under their own ids; never duplicates, safe to rerun."""
    from service.audit.actions import Action, time_range
    from service.audit.trail import command_audit
    from service.errors import NotConfigured, Unprocessable, UpstreamUnavailable
    from service.onramp.stripe_client import StripeOnramp
    from service.reconciliation.imports import import_sessions
    from service.reports import progress_bar

    start, end = since, until
    if end is not None and end <= start:
        fail("--until must be after --since", EXIT_CONFIGURATION)

    async def run(settings: Settings, database: Database) -> list[SessionImported]:
        stripe = StripeOnramp(settings.stripe)
        stripe.require_configured()
        try:
            # One row for the run, once it is over: each page is its own transaction.
            target = time_range(start, end)
            async with command_audit(database, Action.SESSIONS_IMPORT, target) as audit:
                with progress_bar("Importing sessions", not as_json) as progress:
                    imported = await import_sessions(
                        database, stripe, since=start, until=end, dry_run=dry_run, progress=progress
                    )
                audit.summarise((result.outcome for result in imported), dry_run=dry_run)
                return imported
        finally:
            await stripe.close()

    try:
        results = with_database(run)
    except (UpstreamUnavailable, Unprocessable) as error:
        fail(f"Stripe: {error.detail}")
    except NotConfigured as error:
        fail(error.detail, EXIT_CONFIGURATION)
    columns = [("stripe_session_id", "Stripe session"), ("status", "Status")]
    _report_sessions(results, columns, as_json=as_json, title="Session import", dry_run=dry_run)


@click.command("replay")
@click.option("--id", "session_ids", multiple=True, help="A session id (repeatable).")
@click.option("--since", type=TIME, help="Sessions created at or after (UTC).")
@click.option("--status", type=click.Choice(LIFECYCLE.statuses), help="Only this status.")
@click.option(
    "--all",
    "every",
    is_flag=True,
    help="Every session this database holds (to bring back lost ones: `sessions import`).",
)
@click.option("--dry-run", is_flag=True, help="Report what would change; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=8, show_default=True)
@reports_database_errors
def replay_sessions_command(
    session_ids: tuple[str, ...],
    since: datetime | None,
    status: str | None,
    every: bool,
    dry_run: bool,
    as_json: bool,
    concurrency: int,
) -> None:
    """Re-read sessions from Stripe and bring them forward (never back); safe to rerun."""
    from service.audit.actions import Action, selection, time_range
    from service.audit.trail import command_audit
    from service.onramp.stripe_client import StripeOnramp
    from service.reconciliation.replay import replay_sessions
    from service.reports import progress_bar

    if not (session_ids or since or status or every):
        fail("choose sessions with --id, --since, --status or --all", EXIT_CONFIGURATION)

    target = selection(
        *session_ids, time_range(since) if since else None, status and f"status {status}"
    )

    async def run(settings: Settings, database: Database) -> list[SessionReplayed]:
        stripe = StripeOnramp(settings.stripe)
        try:
            # One row for the run, once it is over: each session is its own transaction.
            async with command_audit(database, Action.SESSIONS_REPLAY, target) as audit:
                with progress_bar("Replaying sessions", not as_json) as progress:
                    replayed = await replay_sessions(
                        database,
                        stripe,
                        session_ids=list(session_ids) or None,
                        since=since,
                        status=status,
                        dry_run=dry_run,
                        concurrency=concurrency,
                        progress=progress,
                    )
                audit.summarise((result.outcome for result in replayed), dry_run=dry_run)
                return replayed
        finally:
            await stripe.close()

    results = with_database(run)
    columns = [("before", "Before"), ("after", "After")]
    _report_sessions(results, columns, as_json=as_json, title="Session replay", dry_run=dry_run)


def _report_sessions(
    results: Sequence[SessionImported | SessionReplayed],
    columns: list[tuple[str, str]],
    *,
    as_json: bool,
    title: str,
    dry_run: bool,
) -> None:
    """A row per session and its outcome; exit 1 with one line if any failed, so a
    script retries, once every other session has had its turn."""
    from service.reports import print_report

    print_report(
        results,
        [("session_id", "Session"), *columns, ("outcome", "Outcome"), ("error", "Error")],
        as_json=as_json,
        title=f"{title} (dry run: nothing changed)" if dry_run else title,
    )
    failed = sum(1 for result in results if result.outcome == "failed")
    if failed:
        fail(f"{failed} of {len(results)} sessions failed, each reported with its error")
