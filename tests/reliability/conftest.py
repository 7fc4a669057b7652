"""Sizes for the reliability suite, and where its measured figures go.

The test command runs the short profile; `bench/soak` runs the same tests with
`ONRAMP_RELIABILITY_PROFILE=long` and collects the figures each test records into the
JSON file named by `ONRAMP_RELIABILITY_REPORT`.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from service import migrations
from service.settings import DatabaseSettings
from tests.conftest import POSTGRES_ADMIN_URL


@dataclass(frozen=True)
class Profile:
    name: str
    storm_sessions: int
    storm_kills: int
    outage_seconds: float
    outage_rounds: int
    creates: int
    deliveries: int


PROFILES = {
    "short": Profile(
        "short",
        storm_sessions=300,
        storm_kills=1,
        outage_seconds=4,
        outage_rounds=1,
        creates=50,
        deliveries=20,
    ),
    "long": Profile(
        "long",
        storm_sessions=3000,
        storm_kills=6,
        outage_seconds=8,
        outage_rounds=3,
        creates=400,
        deliveries=200,
    ),
}


@pytest.fixture(scope="session")
def profile() -> Profile:
    name = os.environ.get("ONRAMP_RELIABILITY_PROFILE", "short")
    if name not in PROFILES:
        raise pytest.UsageError(f"ONRAMP_RELIABILITY_PROFILE must be one of {sorted(PROFILES)}")
    return PROFILES[name]


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


@pytest.fixture
def own_postgres() -> Iterator[str]:
    """A migrated database for one test, which it may take down without harming others."""
    name = f"onramp_outage_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    try:
        migrations.upgrade(DatabaseSettings(DATABASE_URL=url))
        yield url
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
