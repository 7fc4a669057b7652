"""`onramp delivery …`: deciding deliveries on chain again, on an operator's word."""

from __future__ import annotations

import asyncio

import click

from service.chain.rpc import ChainRpc
from service.commands import load_settings, reports_database_errors
from service.database import Database
from service.delivery.worker import DeliveryWorker, Rechecked, recheck_sessions
from service.logs import configure_logging
from service.reports import print_report


@click.group()
def delivery() -> None:
    """Delivery proof on chain."""


@delivery.command("recheck")
@click.option("--session", "session_ids", multiple=True, help="A session id (repeatable).")
@click.option(
    "--status",
    type=click.Choice(["pending", "confirmed", "mismatch", "failed"]),
    help="Only sessions whose delivery has this status.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@reports_database_errors
def recheck_delivery(session_ids: tuple[str, ...], status: str | None, as_json: bool) -> None:
    """Check fulfilled sessions' deliveries on chain again, now."""
    settings = load_settings()
    configure_logging("warning", settings.server.log_format)

    async def run() -> list[Rechecked]:
        database = Database(settings.database)
        rpc = ChainRpc(settings.chain)
        try:
            worker = DeliveryWorker(database, rpc, settings.chain)
            return await recheck_sessions(
                database, worker, session_ids=list(session_ids) or None, delivery_status=status
            )
        finally:
            await rpc.close()
            await database.dispose()

    results = asyncio.run(run())
    print_report(
        results,
        [("session_id", "Session"), ("status", "Delivery"), ("detail", "Detail")],
        as_json=as_json,
        title="Delivery recheck",
        outcome_field="status",
    )
