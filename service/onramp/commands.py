"""`onramp sessions …`: sessions as this service holds them, reconciled with Stripe."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from service.commands import (
    EXIT_CONFIGURATION,
    EXIT_FAILURE,
    fail,
    reports_database_errors,
    with_database,
)
from service.onramp.state import STATUSES

if TYPE_CHECKING:
    from service.database import Database
    from service.onramp.imports import SessionImported
    from service.onramp.replay import SessionReplayed
    from service.settings import Settings


@click.group()
def sessions() -> None:
    """Onramp sessions as this service holds them, and their reconciliation with Stripe."""


@sessions.command("list")
@click.option("--status", type=click.Choice(list(STATUSES)), help="Only this status.")
@click.option("--wallet", help="Only this wallet's sessions.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@reports_database_errors
def list_sessions_command(
    status: str | None, wallet: str | None, limit: int, as_json: bool
) -> None:
    """The newest sessions, with their status and delivery."""
    import msgspec

    from service.chain.addresses import checksum_wallet
    from service.onramp import queries
    from service.onramp.schemas import summary
    from service.reports import print_report

    async def run(_: Settings, database: Database) -> list[dict[str, Any]]:
        page = await queries.page(
            database,
            wallet_address=checksum_wallet(wallet) if wallet else None,
            status=status,
            cursor=None,
            limit=limit,
        )
        return [msgspec.to_builtins(summary(session)) for session in page.sessions]

    try:
        rows = with_database(run, reads_only=True)
    except ValueError as error:
        fail(f"--wallet: {error}", EXIT_CONFIGURATION)
    print_report(
        [
            {
                "id": row["id"],
                "status": row["status"],
                "walletAddress": row["walletAddress"],
                "sourceAmount": row["sourceAmount"],
                "delivery": row["delivery"]["status"],
                "createdAt": row["createdAt"],
            }
            for row in rows
        ]
        if not as_json
        else rows,
        [
            ("id", "Session"),
            ("status", "Status"),
            ("walletAddress", "Wallet"),
            ("sourceAmount", "Amount"),
            ("delivery", "Delivery"),
            ("createdAt", "Created"),
        ],
        as_json=as_json,
        title="Onramp sessions",
        outcome_field="status",
    )


@sessions.command("import")
@click.option(
    "--since", type=click.DateTime(), required=True, help="Sessions created at or after (UTC)."
)
@click.option("--until", type=click.DateTime(), help="Sessions created before (UTC).")
@click.option("--dry-run", is_flag=True, help="Report what would be imported; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@reports_database_errors
def import_sessions_command(
    since: datetime, until: datetime | None, dry_run: bool, as_json: bool
) -> None:
    """Bring back sessions that Stripe has and this database lost (after a restore),
    under their own ids; never duplicates, safe to rerun."""
    from service.errors import NotConfigured, Unprocessable, UpstreamUnavailable
    from service.onramp.imports import import_sessions
    from service.onramp.stripe_client import StripeOnramp
    from service.reports import progress_bar

    start, end = since.replace(tzinfo=UTC), until.replace(tzinfo=UTC) if until else None
    if end is not None and end <= start:
        fail("--until must be after --since", EXIT_CONFIGURATION)

    async def run(settings: Settings, database: Database) -> list[SessionImported]:
        stripe = StripeOnramp(settings.stripe)
        stripe.require_configured()
        try:
            with progress_bar("Importing sessions", not as_json) as progress:
                return await import_sessions(
                    database, stripe, since=start, until=end, dry_run=dry_run, progress=progress
                )
        finally:
            await stripe.close()

    try:
        results = with_database(run)
    except (UpstreamUnavailable, Unprocessable) as error:
        fail(f"Stripe: {error.detail}")
    except NotConfigured as error:
        fail(error.detail, EXIT_CONFIGURATION)
    columns = [("stripe_session_id", "Stripe session"), ("status", "Status")]
    _report(results, columns, as_json=as_json, title="Session import", dry_run=dry_run)


@sessions.command("replay")
@click.option("--id", "session_ids", multiple=True, help="A session id (repeatable).")
@click.option("--since", type=click.DateTime(), help="Sessions created at or after (UTC).")
@click.option("--status", type=click.Choice(list(STATUSES)), help="Only this status.")
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
    from service.onramp.replay import replay_sessions
    from service.onramp.stripe_client import StripeOnramp
    from service.reports import progress_bar

    if not (session_ids or since or status or every):
        fail("choose sessions with --id, --since, --status or --all", EXIT_CONFIGURATION)

    async def run(settings: Settings, database: Database) -> list[SessionReplayed]:
        stripe = StripeOnramp(settings.stripe)
        try:
            with progress_bar("Replaying sessions", not as_json) as progress:
                return await replay_sessions(
                    database,
                    stripe,
                    session_ids=list(session_ids) or None,
                    since=since.replace(tzinfo=UTC) if since else None,
                    status=status,
                    dry_run=dry_run,
                    concurrency=concurrency,
                    progress=progress,
                )
        finally:
            await stripe.close()

    results = with_database(run)
    columns = [("before", "Before"), ("after", "After")]
    _report(results, columns, as_json=as_json, title="Session replay", dry_run=dry_run)


def _report(
    results: Sequence[SessionImported | SessionReplayed],
    columns: list[tuple[str, str]],
    *,
    as_json: bool,
    title: str,
    dry_run: bool,
) -> None:
    """A row per session and its outcome; exit 1 if any failed, so a script retries."""
    from service.reports import print_report

    print_report(
        results,
        [("session_id", "Session"), *columns, ("outcome", "Outcome"), ("error", "Error")],
        as_json=as_json,
        title=f"{title} (dry run: nothing changed)" if dry_run else title,
    )
    if any(result.outcome == "failed" for result in results):
        sys.exit(EXIT_FAILURE)
