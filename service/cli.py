"""The `onramp` command: run, migrate and operate the service.

Each command reads the settings once and turns any configuration or start-up problem
into one line per problem on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any, NoReturn, TypeVar

import click
import msgspec
import structlog
import uvicorn
from alembic.util import CommandError
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from service import migrations
from service.chain.addresses import checksum_wallet
from service.chain.rpc import ChainRpc
from service.database import Database
from service.delivery.worker import DeliveryWorker, Rechecked, recheck_sessions
from service.demo.flow import printable, run_demo
from service.logs import configure_logging, scrub
from service.onramp.replay import SessionReplayed, replay_sessions
from service.onramp.schemas import summary
from service.onramp.service import list_sessions
from service.onramp.state import STATUSES
from service.onramp.stripe_client import StripeOnramp
from service.reports import print_report, progress_bar
from service.settings import ConfigurationError, Settings
from service.stripe_sim.app import DEFAULT_SECRET_KEY, StripeSimulator
from service.stripe_sim.webhooks import WebhookConfig
from service.webhooks.replay import Replayed, replay_events

F = TypeVar("F", bound=Callable[..., Any])
log = structlog.get_logger("onramp.cli")

EXIT_CONFIGURATION = 2
EXIT_FAILURE = 1


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    click.echo(f"onramp: {scrub(message)}", err=True)
    sys.exit(code)


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigurationError as error:
        for problem in error.problems:
            click.echo(f"onramp: configuration error: {problem}", err=True)
        sys.exit(EXIT_CONFIGURATION)


def reports_database_errors(command: F) -> F:
    """A database that cannot be reached, or a revision that does not exist, is a
    one-line operational error, not a crash."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except SQLAlchemyError as error:
            detail = str(getattr(error, "orig", None) or error).strip().splitlines()
            fail(f"database error: {detail[0] if detail else type(error).__name__}")
        except CommandError as error:
            fail(f"migration error: {error}")

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="onramp")
def main() -> None:
    """Sell MUSD on Mezo for card money through Stripe's Crypto Onramp."""


@main.command()
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    envvar="WEB_CONCURRENCY",
    help="Worker processes (or WEB_CONCURRENCY).",
)
@reports_database_errors
@click.option(
    "--no-worker",
    is_flag=True,
    help="Do not check deliveries in these processes (run `onramp worker` instead).",
)
def serve(workers: int, no_worker: bool) -> None:
    """Run the HTTP API with uvicorn on HOST:PORT (and the delivery worker, by default)."""
    if no_worker:
        os.environ["DELIVERY_WORKER"] = "false"
    settings = load_settings()
    configure_logging(settings.server.log_level, settings.server.log_format)
    if settings.auth.jwt_secret is None:
        # Development only (production refuses to start without one): one secret for
        # this run, inherited by every worker so their tokens are interchangeable.
        os.environ["JWT_SECRET"] = secrets.token_urlsafe(48)
    if settings.database.is_sqlite:
        migrations.upgrade(settings.database)
        log.info("schema_ready", revision=migrations.current_revision(settings.database))
    else:
        _require_schema_at_head(settings)
    if workers > 1:
        # Each worker counts its own requests; prometheus_client merges them from here.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="onramp-metrics-")
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=settings.server.host,
        port=settings.server.port,
        workers=workers,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=bool(settings.server.trusted_proxies),
        forwarded_allow_ips=settings.server.trusted_proxies or None,
        timeout_graceful_shutdown=20,
    )


def _require_schema_at_head(settings: Settings) -> None:
    current = migrations.current_revision(settings.database)
    head = migrations.head_revision()
    if current != head:
        fail(
            f"the database schema is at {current or 'nothing'} but this release needs "
            f"{head}: run `onramp migrate` first",
            EXIT_CONFIGURATION,
        )


@main.command()
@click.option("--revision", default="head", show_default=True, help="Upgrade to this revision.")
@click.option("--downgrade", "downgrade_to", metavar="REVISION", help="Downgrade to REVISION.")
@reports_database_errors
def migrate(revision: str, downgrade_to: str | None) -> None:
    """Bring the database schema to the newest revision (or the one given)."""
    settings = load_settings()
    configure_logging(settings.server.log_level, settings.server.log_format)
    if downgrade_to is not None:
        migrations.downgrade(settings.database, downgrade_to)
    else:
        migrations.upgrade(settings.database, revision)
    current = migrations.current_revision(settings.database)
    click.echo(f"database schema at {current or 'base'}")


@main.command()
@reports_database_errors
def worker() -> None:
    """Check deliveries on chain until stopped (SIGTERM or Ctrl-C)."""
    settings = load_settings()
    configure_logging(settings.server.log_level, settings.server.log_format)

    async def run() -> None:
        database = Database(settings.database)
        rpc = ChainRpc(settings.chain)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        log.info("worker_started")
        try:
            await DeliveryWorker(database, rpc, settings.chain).run(stop)
        finally:
            await rpc.close()
            await database.dispose()
        log.info("worker_stopped")

    asyncio.run(run())


@main.command()
def demo() -> None:
    """The whole purchase on this machine: sign-in, session, Stripe, chain, delivery proof."""
    console = Console(stderr=True)

    def step(text: str, seconds: float) -> None:
        console.print(f"[bold green]{seconds:6.2f}s[/] {text}")

    console.print("[bold]onramp demo[/]: every part runs locally and stops at the end")
    try:
        session = run_demo(step)
    except KeyboardInterrupt:
        fail("demo interrupted; everything it started was stopped")
    except Exception as error:  # the demo reports any failure in one line
        fail(f"demo failed: {error}")
    click.echo(printable(session))
    if session["delivery"]["status"] != "confirmed":
        fail(f"delivery ended {session['delivery']['status']}")


@main.group()
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
    settings = load_settings()
    configure_logging("warning", settings.server.log_format)

    async def run() -> list[dict[str, Any]]:
        database = Database(settings.database)
        try:
            async with database.sessions() as db:
                page = await list_sessions(
                    db,
                    wallet_address=checksum_wallet(wallet) if wallet else None,
                    status=status,
                    cursor=None,
                    limit=limit,
                )
            return [msgspec.to_builtins(summary(session)) for session in page.sessions]
        finally:
            await database.dispose()

    try:
        rows = asyncio.run(run())
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


@sessions.command("replay")
@click.option("--id", "session_ids", multiple=True, help="A session id (repeatable).")
@click.option("--since", type=click.DateTime(), help="Sessions created at or after (UTC).")
@click.option("--status", type=click.Choice(list(STATUSES)), help="Only this status.")
@click.option("--all", "every", is_flag=True, help="Every session known to Stripe.")
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
    if not (session_ids or since or status or every):
        fail("choose sessions with --id, --since, --status or --all", EXIT_CONFIGURATION)
    settings = load_settings()
    configure_logging("warning", settings.server.log_format)

    async def run() -> list[SessionReplayed]:
        database = Database(settings.database)
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
            await database.dispose()

    results = asyncio.run(run())
    print_report(
        results,
        [
            ("session_id", "Session"),
            ("before", "Before"),
            ("after", "After"),
            ("outcome", "Outcome"),
            ("error", "Error"),
        ],
        as_json=as_json,
        title="Session replay (dry run: nothing changed)" if dry_run else "Session replay",
    )
    if any(result.outcome == "failed" for result in results):
        sys.exit(EXIT_FAILURE)


@main.group()
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


@main.group()
def webhooks() -> None:
    """Stripe's events as this service stored them."""


@webhooks.command("replay")
@click.option("--since", type=click.DateTime(), help="Events received at or after (UTC).")
@click.option("--event", "event_ids", multiple=True, help="An event id (repeatable).")
@click.option("--dry-run", is_flag=True, help="Report what would change; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@reports_database_errors
def replay_webhooks(
    since: datetime | None, event_ids: tuple[str, ...], dry_run: bool, as_json: bool
) -> None:
    """Re-apply stored events to their sessions (safe to run again)."""
    settings = load_settings()
    configure_logging("warning", settings.server.log_format)

    async def run() -> list[Replayed]:
        database = Database(settings.database)
        try:
            with progress_bar("Replaying events", not as_json) as progress:
                return await replay_events(
                    database,
                    since=since.replace(tzinfo=UTC) if since else None,
                    event_ids=list(event_ids) or None,
                    dry_run=dry_run,
                    progress=progress,
                )
        finally:
            await database.dispose()

    results = asyncio.run(run())
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


@main.command("stripe-sim")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=12111, show_default=True)
@click.option(
    "--secret-key",
    default=DEFAULT_SECRET_KEY,
    show_default=True,
    envvar="STRIPE_SIM_SECRET_KEY",
    help="The API key clients must send (point STRIPE_SECRET_KEY at it).",
)
@click.option(
    "--webhook-url",
    "webhook_urls",
    multiple=True,
    help="Deliver signed events to this URL (repeatable).",
)
@click.option(
    "--webhook-secret",
    envvar="STRIPE_WEBHOOK_SECRET",
    help="Signing secret (whsec_…); the service's STRIPE_WEBHOOK_SECRET.",
)
def stripe_sim(
    host: str, port: int, secret_key: str, webhook_urls: tuple[str, ...], webhook_secret: str | None
) -> None:
    """Run the local Stripe stand-in (STRIPE_API_BASE=http://HOST:PORT)."""
    configure_logging("info", "console" if sys.stderr.isatty() else "json")
    click.echo(f"Stripe stand-in on http://{host}:{port} (key {secret_key[:12]}…)", err=True)
    simulator = StripeSimulator(secret_key=secret_key)
    simulator.webhooks.config = WebhookConfig(urls=list(webhook_urls), secret=webhook_secret)
    uvicorn.run(
        simulator,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
    )


if __name__ == "__main__":  # pragma: no cover
    main()
