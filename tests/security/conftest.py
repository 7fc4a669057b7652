"""The service as it is deployed: an `onramp serve` process on PostgreSQL, with the
Stripe stand-in, an operator key and one allowed browser origin."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from service.settings import DatabaseSettings
from service.tables import metadata
from tests.onramp.conftest import ADMIN_KEY, token_for
from tests.support.processes import OnrampProcess, service_env
from tests.support.stripe import RunningStripe

ALLOWED_ORIGIN = "https://app.example"
FOREIGN_ORIGIN = "https://evil.example"
OPERATOR = {"X-API-Key": ADMIN_KEY}


def signed_in(wallet: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(wallet)}"}


def row_counts(database_url: str) -> dict[str, int]:
    """How many rows each table holds: what "nothing changed" is checked against."""
    counts = {}
    with psycopg.connect(DatabaseSettings(DATABASE_URL=database_url).libpq_url) as connection:
        for table in metadata.sorted_tables:
            query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table.name))
            row = connection.execute(query).fetchone()
            counts[table.name] = row[0] if row else 0
    return counts


@pytest.fixture(scope="package")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    migrated: dict[str, str],
    stripe_server: RunningStripe,
) -> Iterator[OnrampProcess]:
    """One `onramp serve` for the whole package, stopped as a platform stops it."""
    env = service_env(
        migrated["postgresql"],
        stripe_server,
        ADMIN_API_KEYS=ADMIN_KEY,
        ALLOWED_ORIGINS=ALLOWED_ORIGIN,
        STRIPE_MAX_NETWORK_RETRIES="0",
        STRIPE_TIMEOUT_SECONDS="3",
    )
    process = OnrampProcess(tmp_path_factory.mktemp("served"), "serve", **env)
    process.start()
    yield process
    assert process.stop() in (0, -signal.SIGTERM), process.output()


@pytest.fixture(scope="package")
def served(server: OnrampProcess) -> str:
    """The base URL of the package's `onramp serve`."""
    return server.url
