"""Each hot or operator query reads through its index on PostgreSQL, not a sequential
scan, once the planner has statistics of a database shaped like production's.

The statements are the code's own (tests/support/hot_queries.py imports them), so a
change to one that loses its index fails here. The database is a scaled-down year of
traffic (tests/support/populate.py): small enough to fill in seconds, large enough that
the planner weighs an index against a scan as it would at size.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest

from service import migrations
from service.settings import DatabaseSettings
from tests.conftest import POSTGRES_ADMIN_URL
from tests.support.hot_queries import (
    hot_queries,
    indexes_read,
    nodes,
    plan_of,
    samples,
    tables_scanned,
)
from tests.support.populate import populate

SESSIONS = 20_000


@pytest.fixture(scope="module")
def populated() -> Iterator[str]:
    name = f"onramp_plans_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    try:
        migrations.upgrade(DatabaseSettings(DATABASE_URL=url))
        populate(url, SESSIONS)
        yield url
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_every_hot_query_reads_through_its_index(populated: str) -> None:
    wrong = []
    with psycopg.connect(populated) as connection:
        for query in hot_queries(samples(populated)):
            plan = plan_of(connection, query, analyze=False)
            used, scanned = indexes_read(plan), tables_scanned(plan)
            if not query.acceptable & used or scanned:
                wrong.append(f"{query.name}: indexes {sorted(used)}, scans {sorted(scanned)}")
    assert wrong == []


def test_the_claim_reads_only_the_checks_it_claims(populated: str) -> None:
    """Not one finished check is read and thrown away to find the due ones."""
    with psycopg.connect(populated) as connection:
        claim = hot_queries(samples(populated))[0]
        plan = plan_of(connection, claim, analyze=True)
    assert plan["Plan"]["Actual Rows"] == claim.params["limit"]
    assert sum(n.get("Rows Removed by Filter", 0) for n in nodes(plan["Plan"])) == 0
