"""`onramp audit …`: the operators' audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from service.commands import TIME, reports_database_errors, with_database

if TYPE_CHECKING:
    from service.database import Database
    from service.settings import Settings


@click.group()
def audit() -> None:
    """Who changed what, and how it ended (operator routes and commands)."""


@audit.command("list")
@click.option("--since", type=TIME, help="Actions at or after (UTC when no zone is given).")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@reports_database_errors
def list_actions_command(since: datetime | None, limit: int, as_json: bool) -> None:
    """The newest actions first."""
    import msgspec

    from service.audit import queries
    from service.reports import print_report

    async def run(_: Settings, database: Database) -> list[dict[str, Any]]:
        page = await queries.page(database, since=since, cursor=None, limit=limit)
        return [msgspec.to_builtins(record) for record in page.items]

    print_report(
        with_database(run, reads_only=True),
        [
            ("at", "At"),
            ("actor", "Actor"),
            ("action", "Action"),
            ("target", "Target"),
            ("outcome", "Outcome"),
            ("detail", "Detail"),
            ("clientIp", "Client IP"),
        ],
        as_json=as_json,
        title="Operator actions",
    )
