"""Each hot query's plan and time on a populated PostgreSQL, before and after migration
0013's indexes: `.venv/bin/python bench/plans.py [--sessions 200000]`.

Fills a scratch database at revision 0012 by SQL (tests/support/populate.py), times
every statement of tests/support/hot_queries.py with EXPLAIN (ANALYZE, BUFFERS) (reads:
the median of five runs; writes: one run, rolled back), migrates to head while timing
it, and times them again. Prints a Markdown
table; drops the database at the end.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service import migrations
from service.settings import DatabaseSettings
from tests.support.hot_queries import (
    HotQuery,
    hot_queries,
    indexes_read,
    nodes,
    plan_of,
    samples,
)
from tests.support.populate import populate

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
RUNS = 5


def measure(url: str, queries: list[HotQuery]) -> dict[str, dict[str, Any]]:
    measured = {}
    with psycopg.connect(url) as connection:
        for query in queries:
            # A write rolled back leaves dead row versions the next run would step over.
            runs = 1 if query.writes else RUNS
            plans = [plan_of(connection, query, analyze=True) for _ in range(runs)]
            top = nodes(plans[-1]["Plan"])
            access = next(
                (n for n in top if n["Node Type"].endswith("Scan") and "Relation Name" in n),
                top[0],
            )
            measured[query.name] = {
                "ms": statistics.median(p["Execution Time"] for p in plans),
                "buffers": top[0].get("Shared Hit Blocks", 0) + top[0].get("Shared Read Blocks", 0),
                "access": f"{access['Node Type']}"
                + (f" {access['Index Name']}" if "Index Name" in access else ""),
                "indexes": indexes_read(plans[-1]),
            }
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=200_000)
    args = parser.parse_args()
    name = f"onramp_plans_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{ADMIN.rsplit('/', 1)[0]}/{name}"
    settings = DatabaseSettings(DATABASE_URL=url)
    try:
        migrations.upgrade(settings, "0012")
        started = time.perf_counter()
        counts = populate(url, args.sessions)
        print(f"populated in {time.perf_counter() - started:.0f} s: {counts}")
        queries = hot_queries(samples(url))
        before = measure(url, queries)
        started = time.perf_counter()
        migrations.upgrade(settings)
        print(f"migration 0013 (concurrent builds) took {time.perf_counter() - started:.1f} s")
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("ANALYZE")
        after = measure(url, queries)
        print("\n| query | before: plan | ms | buffers | after: plan | ms | buffers |")
        print("|---|---|---:|---:|---|---:|---:|")
        for query in queries:
            b, a = before[query.name], after[query.name]
            print(
                f"| {query.name} | {b['access']} | {b['ms']:.2f} | {b['buffers']}"
                f" | {a['access']} | {a['ms']:.2f} | {a['buffers']} |"
            )
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
