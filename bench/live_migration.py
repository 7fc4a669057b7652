"""A migration under load: the next migration's shape (a column with a constant default
and three indexes) applied to a populated PostgreSQL database while `onramp serve`
answers single-session reads (four clients) and webhook events (one client).

Two ways of writing it, each on a fresh database of the same size: `plain` (the indexes
built by `op.create_index` inside the migration's transaction, which also holds the
column's exclusive lock until it commits) and `concurrent` (`create_index_concurrently`,
docs/operations.md "Writing the next migration"). Goal (issue 20): no request waits a
second during the migration. The test of the same run, smaller, is
tests/test_live_migrations.py.

    .venv/bin/python bench/live_migration.py [--sessions 1000000] [--only concurrent]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.harness import fresh_database
from service.settings import DatabaseSettings
from tests.onramp.conftest import new_wallet
from tests.support.processes import service_env, serving
from tests.test_live_migrations import WALLETS, measured, populate, with_next_migration


async def one_variant(sessions: int, concurrently: bool) -> dict[str, float | int | str]:
    with fresh_database() as url, tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        wallets = [new_wallet() for _ in range(WALLETS)]
        filled = time.monotonic()
        session_ids = populate(url, wallets, sessions)
        filled = time.monotonic() - filled
        config = with_next_migration(
            DatabaseSettings(DATABASE_URL=url), folder, concurrently=concurrently
        )
        with serving(folder, **service_env(url)) as base:
            async with httpx.AsyncClient(base_url=base, timeout=120) as client:
                took, quiet, during = await measured(client, config, wallets[0], session_ids)
    return {
        "variant": "concurrent" if concurrently else "plain",
        "sessions": sessions,
        "populate_seconds": round(filled, 1),
        **waits(took, quiet, during),
    }


def waits(
    took: float, quiet: tuple[float, float, int], during: tuple[float, float, int]
) -> dict[str, float | int]:
    """What `measured` saw: the migration's length and the longest waits, quiet and
    while it ran."""
    return {
        "migration_seconds": round(took, 2),
        "longest_read_quiet_ms": round(quiet[0] * 1000),
        "longest_webhook_quiet_ms": round(quiet[1] * 1000),
        "longest_read_migrating_ms": round(during[0] * 1000),
        "longest_webhook_migrating_ms": round(during[1] * 1000),
        "requests_while_migrating": during[2],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["plain", "concurrent"])
    args = parser.parse_args()
    variants = [args.only == "concurrent"] if args.only else [False, True]
    rows = [asyncio.run(one_variant(args.sessions, concurrently)) for concurrently in variants]
    print(json.dumps(rows, indent=2))
    print(
        "\n| variant | sessions | migration | longest read (quiet → migrating) |"
        " longest webhook (quiet → migrating) |"
    )
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['variant']} | {row['sessions']:,} | {row['migration_seconds']} s |"
            f" {row['longest_read_quiet_ms']} → {row['longest_read_migrating_ms']} ms |"
            f" {row['longest_webhook_quiet_ms']} → {row['longest_webhook_migrating_ms']} ms |"
        )


if __name__ == "__main__":
    main()
