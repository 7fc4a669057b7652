"""The `onramp` command: run, migrate and operate the service.

Each command reads the settings once and turns any configuration or start-up problem
into one line per problem on stderr and a non-zero exit, never a traceback.

Start-up stays light (`onramp --help` imports click and the command definitions only):
each command imports what it runs inside its body, and the capability groups are
loaded by name when they are called or listed (click's lazily loaded subcommands).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from typing import TYPE_CHECKING, Any

import click

from service.commands import (
    EXIT_CONFIGURATION,
    fail,
    load_settings,
    reports_database_errors,
    with_database,
)
from service.stripe_sim import DEFAULT_SECRET_KEY

if TYPE_CHECKING:
    from service.database import Database
    from service.delivery.worker import DeliveryWorker
    from service.settings import Settings


class LazyGroup(click.Group):
    """A group whose subcommands named in `lazy_subcommands` ("name": "module.attr") are
    imported only when called, or listed by `--help`."""

    def __init__(self, *args: Any, lazy_subcommands: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = lazy_subcommands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy_subcommands])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy_subcommands:
            return super().get_command(ctx, cmd_name)
        module, name = self.lazy_subcommands[cmd_name].rsplit(".", 1)
        command = getattr(importlib.import_module(module), name)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy_subcommands[cmd_name]} is not a click command")
        return command


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    lazy_subcommands={
        "webhooks": "service.webhooks.commands.webhooks",
        "delivery": "service.delivery.commands.delivery",
        "reconcile": "service.reconciliation.commands.reconcile_command",
        "retention": "service.retention.commands.retention",
        "audit": "service.audit.commands.audit",
        "endpoints": "service.merchant_webhooks.commands.endpoints",
    },
)
@click.version_option(package_name="onramp")
def main() -> None:
    """Sell MUSD on Mezo for card money through Stripe's Crypto Onramp."""


@main.group(
    cls=LazyGroup,
    lazy_subcommands={
        "list": "service.onramp.commands.list_sessions_command",
        "replay": "service.reconciliation.commands.replay_sessions_command",
        "import": "service.reconciliation.commands.import_sessions_command",
    },
)
def sessions() -> None:
    """Onramp sessions as this service holds them, and their reconciliation with Stripe."""


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
    import secrets
    import tempfile

    import uvicorn

    from service import migrations
    from service.commands import log
    from service.live import open_files
    from service.logs import configure_logging

    if no_worker:
        os.environ["DELIVERY_WORKER"] = "false"
    settings = load_settings()
    if problem := open_files.hold(settings):
        fail(f"configuration error: {problem}", EXIT_CONFIGURATION)
    configure_logging(settings.server.log_level, settings.server.log_format)
    _require_metrics_port(settings)
    if not settings.auth.jwt_secrets:
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
        # The app reads X-Forwarded-For itself, from TRUSTED_PROXIES (service/forwarded.py);
        # uvicorn's own reading (on by default, for 127.0.0.1) would come first.
        proxy_headers=False,
        timeout_graceful_shutdown=20,
    )


def _require_metrics_port(settings: Settings) -> None:
    """METRICS_PORT taken is one line before uvicorn starts, not a traceback from each
    worker's start-up (the app serves it, service/app.py)."""
    from service.operations import metrics_endpoint

    port = settings.server.metrics_port
    if port is None:
        return
    try:
        metrics_endpoint.listen(settings.server.host, port, shared=True).close()
    except metrics_endpoint.EndpointUnavailable as error:
        fail(f"METRICS_PORT: {error}")


def _require_schema_at_head(settings: Settings) -> None:
    from service import migrations

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
    from service import migrations
    from service.logs import configure_logging

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
    import asyncio
    import signal

    from service import tracing
    from service.chain.rpc import Chains
    from service.commands import log
    from service.delivery.worker import DeliveryWorker
    from service.merchant_webhooks.dispatcher import Dispatcher
    from service.operations import metrics_endpoint
    from service.operations.fingerprints import checked_in
    from service.retention.schedule import RetentionSchedule

    async def run(settings: Settings, database: Database) -> None:
        traced = tracing.start(settings, "worker")
        chains = Chains(settings.chain)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        retention = RetentionSchedule(database, settings.retention)
        dispatcher = Dispatcher(database, settings.outgoing_webhooks, settings.server.is_deployed)
        worker = DeliveryWorker(
            database, chains, settings.chain, beside=[retention.run, dispatcher.run]
        )
        try:
            async with _worker_endpoint(worker, settings), checked_in(database, settings, "worker"):
                log.info("worker_started")
                await worker.run(stop)
        finally:
            await chains.close()
            if traced:
                tracing.flush()
        log.info("worker_stopped")

    try:
        with_database(run, log_level=None)
    except metrics_endpoint.EndpointUnavailable as error:
        fail(f"WORKER_METRICS_PORT: {error}")


def _worker_endpoint(
    worker: DeliveryWorker, settings: Settings
) -> contextlib.AbstractAsyncContextManager[None]:
    """/health and /metrics on WORKER_METRICS_PORT, when it is set."""
    from service.commands import log
    from service.operations import metrics_endpoint

    port = settings.server.worker_metrics_port
    if port is None:
        return contextlib.nullcontext()
    log.info("worker_endpoint", host=settings.server.host, port=port)
    return metrics_endpoint.serving(worker.is_alive, settings.server.host, port)


@main.command()
@click.option(
    "--keep-open",
    is_flag=True,
    help="Keep everything up until Ctrl-C: the /demo page, and the example dApp at /app/"
    " to buy by hand.",
)
def demo(keep_open: bool) -> None:
    """The whole purchase on this machine: sign-in, session, Stripe, chain, delivery proof."""
    import contextlib
    import signal
    import time

    from rich.console import Console

    from service.demo.flow import printable, run_demo
    from service.onramp.lifecycle import DeliveryStatus

    console = Console(stderr=True)

    def step(text: str, seconds: float) -> None:
        console.print(f"[bold green]{seconds:6.2f}s[/] {text}")

    def hold() -> None:
        console.print("everything stays up for the page; Ctrl-C ends the demo")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(1)

    def stop(signum: int, frame: object) -> None:
        """SIGTERM and SIGHUP end the demo as Ctrl-C does, so that everything it
        started (anvil, a process of its own) is stopped too; a second signal waits."""
        for each in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(each, signal.SIG_IGN)
        raise KeyboardInterrupt

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
    console.print("[bold]onramp demo[/]: every part runs locally and stops at the end")
    try:
        session = run_demo(step, hold=hold if keep_open else None)
    except KeyboardInterrupt:
        fail("demo interrupted; everything it started was stopped")
    except Exception as error:  # the demo reports any failure in one line
        fail(f"demo failed: {error}")
    click.echo(printable(session))
    if session["delivery"]["status"] != DeliveryStatus.CONFIRMED:
        fail(f"delivery ended {session['delivery']['status']}")


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
    import uvicorn

    from service.logs import configure_logging
    from service.stripe_sim.app import StripeSimulator
    from service.stripe_sim.webhooks import WebhookConfig

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


@main.group()
def settings() -> None:
    """The environment variables the service reads."""


@settings.command("reference")
@click.option(
    "--format",
    "shape",
    type=click.Choice(["markdown", "dotenv"]),
    default="markdown",
    show_default=True,
)
@click.option(
    "--write",
    is_flag=True,
    help="Write docs/configuration.md and .env.example into this checkout.",
)
def settings_reference(shape: str, write: bool) -> None:
    """Every variable with its default, what it does and where it is required, written
    from the settings groups (service/settings/groups.py)."""
    from pathlib import Path

    from service.settings import Settings, reference

    if not write:
        text = reference.markdown(Settings) if shape == "markdown" else reference.dotenv(Settings)
        click.echo(text, nl=False)
        return
    root = Path(__file__).resolve().parent.parent  # service/cli.py -> the checkout
    if not (root / "pyproject.toml").is_file():
        raise click.ClickException("--write needs a checkout of the repository")
    for path, text in reference.files(Settings).items():
        (root / path).write_text(text)
        click.echo(f"wrote {path}", err=True)
