"""`onramp sessions list`: sessions as this service holds them (the `sessions` group is
made in service/cli.py, with reconciliation's `replay` and `import`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from service.commands import (
    EXIT_CONFIGURATION,
    fail,
    reports_database_errors,
    with_database,
)
from service.onramp.lifecycle import LIFECYCLE

if TYPE_CHECKING:
    from service.database import Database
    from service.settings import Settings


@click.command("list")
@click.option("--status", type=click.Choice(LIFECYCLE.statuses), help="Only this status.")
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
