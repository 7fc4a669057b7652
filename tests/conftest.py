"""Shared fixtures: real databases, settings built from an environment, the real app.

PostgreSQL runs on 127.0.0.1:5432 on every machine here; each test run creates its own
database there and drops it at the end. SQLite databases are files in a temporary
directory. The schema is made by the real migrations, once per database and run.

Every test that needs PostgreSQL or a process of its own is marked `slow_tier` here, from
the code it runs; `./run test --fast` runs the rest (see `pytest_collection_modifyitems`).
"""

from __future__ import annotations

import asyncio
import builtins
import dis
import inspect
import json
import os
import secrets
import subprocess
import sys
import types
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from playwright.sync_api import sync_playwright
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import create_async_engine

from service import migrations
from service.app import create_app
from service.settings import DatabaseSettings, Settings
from service.tables import metadata
from tests.support import log_scan, processes
from tests.support.anvil import Anvil, start_anvil
from tests.support.environment import BASE_ENV
from tests.support.profile import Profile, current_profile
from tests.support.rpc_trouble import TroubledNode, start_troubled_node
from tests.support.stripe import RunningStripe, start_stripe

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


SLOW_TIER = "slow_tier"
# Leaving the test process: any subprocess (`onramp`, anvil, Node, npm, promtool), and
# Chromium through Playwright's driver; then PostgreSQL.
PROCESSES = (
    subprocess,
    asyncio.create_subprocess_exec,
    asyncio.create_subprocess_shell,
    sync_playwright,
)
POSTGRESQL = (psycopg.connect,)
# Whose code is read for those: the project's, not the libraries' it calls.
PROJECT = {"tests", "bench", "service"}
Code = tuple[types.CodeType, dict[str, Any]]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{SLOW_TIER}: needs PostgreSQL or a process of its own (set by tests/conftest.py"
        " from the test's code and fixtures; `./run test --fast` leaves these out)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Read from the code rather than listed, so that a new test lands in its tier by
    itself: an item is slow when it runs on a `postgresql` param, or when its function or
    a fixture of its closure refers to PROCESSES or POSTGRESQL, directly or through the
    project code it calls. PostgreSQL in a fixture parametrized over the databases is its
    `postgresql` param's alone (`database_url` asks for it only there)."""
    roots = {item: [*code_of_item(item)] for item in items if isinstance(item, pytest.Function)}
    project = ProjectCode(code for codes in roots.values() for code, _ in codes)
    processes, postgresql = project.reaching(PROCESSES), project.reaching(POSTGRESQL)
    for item, codes in roots.items():
        if on_postgresql(item) or any(
            code in processes or (code in postgresql and not other_database)
            for (code, _), other_database in codes
        ):
            item.add_marker(SLOW_TIER)


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    """A run without the slow tier may neither start a process nor connect to PostgreSQL,
    so that a test put in the fast tier wrongly fails at once, and on any machine."""
    if f"not {SLOW_TIER}" not in session.config.getoption("markexpr"):
        return (yield)

    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise RuntimeError(
            f"a process or PostgreSQL in a run without {SLOW_TIER}: tests/conftest.py's"
            " pytest_collection_modifyitems should have put this test in that tier"
        )

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "_execute_child", refuse)
        patch.setattr(psycopg, "connect", refuse)
        patch.setattr(psycopg.Connection, "connect", classmethod(refuse))
        patch.setattr(psycopg.AsyncConnection, "connect", classmethod(refuse))
        return (yield)


def on_postgresql(item: pytest.Function) -> bool:
    params = item.callspec.params.values() if hasattr(item, "callspec") else ()
    return any(isinstance(param, str) and param == "postgresql" for param in params)


def code_of_item(item: pytest.Function) -> Iterator[tuple[Code, bool]]:
    """The code of the test and of its fixtures, each with whether it is a fixture
    parametrized over the databases that this item runs on another than PostgreSQL."""
    params = item.callspec.params if hasattr(item, "callspec") else {}
    for code in code_of(item.function):
        yield code, False
    for name in item.fixturenames:
        for fixture in item._fixtureinfo.name2fixturedefs.get(name, ()):
            other = "postgresql" in (fixture.params or ()) and params.get(name) != "postgresql"
            for code in code_of(fixture.func):
                yield code, other


def code_of(value: object) -> Iterator[Code]:
    """The code of a project function, or of a project class's methods, with its globals."""
    if str(attribute(value, "__module__")).partition(".")[0] not in PROJECT:
        return
    if inspect.isclass(value):
        for member in vars(value).values():
            for function in (member, attribute(member, "__func__"), attribute(member, "fget")):
                if inspect.isfunction(function):
                    yield from code_of(function)
        return
    function = inspect.unwrap(value) if callable(value) else None
    if inspect.isfunction(function):
        yield function.__code__, function.__globals__


class ProjectCode:
    """The project code reachable from some roots, read once: what calls what, and what
    refers to one of PROCESSES or POSTGRESQL itself."""

    def __init__(self, roots: Iterable[Code]) -> None:
        self.callers: defaultdict[types.CodeType, set[types.CodeType]] = defaultdict(set)
        self.uses: defaultdict[types.CodeType, list[object]] = defaultdict(list)
        todo = list(dict(roots).items())
        read = {code for code, _ in todo}
        while todo:
            code, namespace = todo.pop()
            callees = [(c, namespace) for c in code.co_consts if isinstance(c, types.CodeType)]
            for value in referenced(code, namespace):
                if any(value is way for way in (*PROCESSES, *POSTGRESQL)):
                    self.uses[code].append(value)
                callees += code_of(value)
            for callee, callee_namespace in callees:
                self.callers[callee].add(code)
                if callee not in read:
                    read.add(callee)
                    todo.append((callee, callee_namespace))

    def reaching(self, ways: tuple[object, ...]) -> set[types.CodeType]:
        """The code that refers to one of `ways`, itself or through what it calls: marked
        backwards from the direct uses, so that a cycle of calls cannot hide one."""
        found = {code for code, used in self.uses.items() if any(way in used for way in ways)}
        marking = list(found)
        while marking:
            for caller in self.callers[marking.pop()] - found:
                found.add(caller)
                marking.append(caller)
        return found


def referenced(code: types.CodeType, namespace: dict[str, Any]) -> Iterator[object]:
    """Every global and import the code reads, and each attribute read off one (`a.b.c`)."""
    current: object = None
    imported: object = None
    for instruction in dis.get_instructions(code):
        name = instruction.argval
        match instruction.opname:
            case "LOAD_GLOBAL" | "LOAD_NAME":
                current = namespace.get(name, attribute(builtins, name))
            case "LOAD_ATTR" | "LOAD_METHOD" if current is not None:
                current = attribute(current, name)
            case "IMPORT_NAME":
                current = imported = sys.modules.get(name)
            case "IMPORT_FROM" if imported is not None:
                current = attribute(imported, name)
            case _:
                current = None
        if current is not None:
            yield current


def attribute(value: object, name: str) -> object:
    """`value.name`, or None: reading the code must not break collection, whatever a
    property or a module's `__getattr__` raises."""
    try:
        return getattr(value, name, None)
    except Exception:
        return None


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
    node = start_troubled_node(anvil.url)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[RunningStripe]:
    server = start_stripe()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def stripe(stripe_server: RunningStripe) -> RunningStripe:
    """The Stripe stand-in, emptied and without faults, for one test."""
    stripe_server.reset()
    return stripe_server
