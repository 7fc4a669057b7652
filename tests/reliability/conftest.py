"""Fixtures of the reliability suite (its sizes are in tests/support/profile.py)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest

from service import migrations
from service.settings import DatabaseSettings
from tests.conftest import POSTGRES_ADMIN_URL


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
