"""Shared fixtures: real databases, settings built from an environment, the real app.

PostgreSQL runs on 127.0.0.1:5432 on every machine here; each test run creates its own
database there and drops it at the end. SQLite databases are files in a temporary
directory. The schema is made by the real migrations, once per database and run.

Every test that needs PostgreSQL or a process of its own is marked `slow_tier` here, from
the code it runs (tests/support/tiers.py); `./run test --fast` runs the rest.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import Any, NoReturn

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import create_async_engine

from service import migrations
from service.app import create_app
from service.database import Database
from service.settings import DatabaseSettings, Settings
from service.tables import metadata
from tests.support import log_scan, processes
from tests.support.anvil import Anvil, start_anvil
from tests.support.environment import BASE_ENV
from tests.support.profile import Profile, current_profile
from tests.support.rpc_trouble import TroubledNode, troubled_node_before
from tests.support.stripe import RunningStripe, start_stripe
from tests.support.tiers import SLOW_TIER, slow_items

POSTGRES_ADMIN_URL = os.environ.get(
    "ONRAMP_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


_SECRETS_IN_OUTPUT: list[str] = []
_PROCESS_LOGS: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
def process_output_archive(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every `onramp` process's output stays under the run's temporary folder."""
    _PROCESS_LOGS.append(tmp_path_factory.getbasetemp())
    processes.OUTPUT_ARCHIVE.append(tmp_path_factory.mktemp("onramp-runs"))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for title, text in report.sections:
        if title.startswith("Captured"):
            _SECRETS_IN_OUTPUT.extend(log_scan.scan([(f"{report.nodeid} ({title})", text)]))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """No secret may appear in anything the service logged during the run."""
    for root in _PROCESS_LOGS:
        _SECRETS_IN_OUTPUT.extend(log_scan.scan(log_scan.process_logs(root)))
    if _SECRETS_IN_OUTPUT:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_sep("=", "secrets found in log output", red=True)
            for finding in dict.fromkeys(_SECRETS_IN_OUTPUT):
                reporter.write_line(finding)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{SLOW_TIER}: needs PostgreSQL or a process of its own (set by tests/support/tiers.py"
        " from the test's code and fixtures; `./run test --fast` leaves these out)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Only a run that selects by tier needs them: reading every test's code for them
    # takes each worker seconds.
    if SLOW_TIER not in config.getoption("markexpr"):
        return
    for item in slow_items(items):
        item.add_marker(SLOW_TIER)


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    """A run without the slow tier may neither start a process nor connect to PostgreSQL,
    so that a test put in the fast tier wrongly fails at once, and on any machine."""
    if f"not {SLOW_TIER}" not in session.config.getoption("markexpr"):
        return (yield)

    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise RuntimeError(
            f"a process or PostgreSQL in a run without {SLOW_TIER}: tests/support/tiers.py"
            " should have put this test in that tier"
        )

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "_execute_child", refuse)
        patch.setattr(psycopg, "connect", refuse)
        patch.setattr(psycopg.Connection, "connect", classmethod(refuse))
        patch.setattr(psycopg.AsyncConnection, "connect", classmethod(refuse))
        return (yield)


@pytest.fixture(scope="session")
def profile() -> Profile:
    return current_profile()


Figures = dict[str, dict[str, Any]]


@pytest.fixture(scope="session")
def figures_by_test(profile: Profile) -> Iterator[Figures]:
    by_test: Figures = {}
    yield by_test
    target = os.environ.get("ONRAMP_RELIABILITY_REPORT")
    if target:
        report = {"profile": profile.name, "tests": by_test}
        Path(target).write_text(json.dumps(report, indent=2) + "\n")


@pytest.fixture
def record_figures(figures_by_test: Figures, request: pytest.FixtureRequest) -> Callable[..., None]:
    """`record_figures(name=value, ...)` files measurements under the running test."""

    def record(**values: Any) -> None:
        figures_by_test.setdefault(request.node.name, {}).update(values)

    return record


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped afterwards."""
    name = f"onramp_test_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'onramp.db'}"


@pytest.fixture(scope="session")
def migrated_postgresql(postgres_url: str) -> str:
    migrations.upgrade(DatabaseSettings(DATABASE_URL=postgres_url))
    return postgres_url


@pytest.fixture(scope="session")
def migrated_sqlite(sqlite_url: str) -> str:
    migrations.upgrade(DatabaseSettings(DATABASE_URL=sqlite_url))
    return sqlite_url


@pytest.fixture(scope="session")
def migrated(migrated_postgresql: str, migrated_sqlite: str) -> dict[str, str]:
    """Both databases brought to head by the real migrations, once per run."""
    return {"postgresql": migrated_postgresql, "sqlite": migrated_sqlite}


@pytest.fixture(params=["postgresql", "sqlite"])
async def database_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """Each persistence test runs on both databases, starting from empty tables. Only the
    param's own database is asked for, so that the SQLite runs need no PostgreSQL."""
    url: str = request.getfixturevalue(f"migrated_{request.param}")
    await empty_tables(url)
    yield url
    await empty_tables(url)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """The service's database layer on `database_url`, disposed of after the test."""
    db = Database(DatabaseSettings(DATABASE_URL=database_url))
    yield db
    await db.dispose()


@pytest.fixture
def emptied_postgresql(migrated_postgresql: str) -> str:
    """The run's PostgreSQL database with every table emptied, for a test whose worker
    process claims whatever checks are due: none left by an earlier test is among them."""
    asyncio.run(empty_tables(migrated_postgresql))
    return migrated_postgresql


async def empty_tables(url: str) -> None:
    engine = create_async_engine(DatabaseSettings(DATABASE_URL=url).async_url)
    async with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            await connection.execute(delete(table))
    await engine.dispose()


@pytest.fixture
def settings_from_env() -> Callable[..., Settings]:
    """Settings as the service would read them from an environment that names its own
    database: what needs no PostgreSQL uses this rather than `make_settings`."""

    def build(**env: str) -> Settings:
        return Settings.from_env({**BASE_ENV, **env})

    return build


@pytest.fixture
def make_settings(
    migrated: dict[str, str], settings_from_env: Callable[..., Settings]
) -> Callable[..., Settings]:
    """Settings as the service would read them from an environment (PostgreSQL default)."""

    def build(**env: str) -> Settings:
        return settings_from_env(**{"DATABASE_URL": migrated["postgresql"], **env})

    return build


@pytest.fixture
def make_client(
    make_settings: Callable[..., Settings],
) -> Callable[..., AsyncTestClient[Litestar]]:
    """An HTTP client for the real app built from an environment."""

    def build(app: Litestar | None = None, **env: str) -> AsyncTestClient[Litestar]:
        return AsyncTestClient(app=app or create_app(make_settings(**env)))

    return build


@pytest.fixture
def project_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    """One local chain for the run, on Mezo testnet's chain id."""
    node = start_anvil()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def troubled_node(anvil: Anvil) -> Iterator[TroubledNode]:
    """An RPC proxy in front of the run's anvil that a test can make misbehave."""
    with troubled_node_before(anvil.url) as node:
        yield node


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[RunningStripe]:
    server = start_stripe()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def stripe(stripe_server: RunningStripe) -> Iterator[RunningStripe]:
    """The Stripe stand-in, emptied and without faults, for one test; its faults are
    cleared after it too, for the tests in this process that share the stand-in as it is."""
    stripe_server.reset()
    yield stripe_server
    stripe_server.faults()
