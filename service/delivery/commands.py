"""`onramp delivery …`: deciding deliveries on chain again, on an operator's word."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from service.commands import reports_database_errors, with_database
from service.onramp.lifecycle import LIFECYCLE, DeliveryStatus

if TYPE_CHECKING:
    from service.database import Database
    from service.settings import Settings


@dataclass(frozen=True)
class Rechecked:
    session_id: str
    status: str
    detail: str


@click.group()
def delivery() -> None:
    """Delivery proof on chain."""


@delivery.command("recheck")
@click.option("--session", "session_ids", multiple=True, help="A session id (repeatable).")
@click.option(
    "--status",
    # A fulfilled session's: its delivery has started.
    type=click.Choice([d for d in LIFECYCLE.deliveries if d != DeliveryStatus.NOT_STARTED]),
    help="Only sessions whose delivery has this status.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@reports_database_errors
def recheck_delivery(session_ids: tuple[str, ...], status: str | None, as_json: bool) -> None:
    """Check fulfilled sessions' deliveries on chain again, now."""
    from service.audit.actions import Action, selection
    from service.audit.trail import command_audit
    from service.chain.rpc import Chains
    from service.delivery.recheck import recheck_sessions
    from service.delivery.worker import DeliveryWorker
    from service.reports import print_report

    target = selection(
        *session_ids, status and f"delivery {status}", everything="every fulfilled session"
    )

    async def run(settings: Settings, database: Database) -> list[Rechecked]:
        chains = Chains(settings.chain)
        try:
            worker = DeliveryWorker(database, chains, settings.chain)
            async with command_audit(database, Action.DELIVERY_RECHECK, target) as audit:
                checked = await recheck_sessions(
                    database,
                    worker,
                    audit,
                    session_ids=list(session_ids) or None,
                    delivery_status=status,
                )
        finally:
            await chains.close()
        return [Rechecked(session_id, c.status, c.detail) for session_id, c in checked]

    results = with_database(run)
    print_report(
        results,
        [("session_id", "Session"), ("status", "Delivery"), ("detail", "Detail")],
        as_json=as_json,
        title="Delivery recheck",
        outcome_field="status",
    )
