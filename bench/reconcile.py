"""Reconciling a month: `onramp reconcile` over 100,000 sessions against the Stripe
stand-in, on PostgreSQL.

The database holds 100,000 sessions spread over 30 days; the stand-in (its own process)
holds the same sessions as Stripe would, with drift planted in a few hundred: sessions
Stripe is ahead on, sessions lost here, deliveries short. The command must find exactly
those. Goal (issue 19): under 30 s on this machine.

The baseline, measured in the same run and alternating with the command, is the
irreducible I/O of the job: the same windows of Stripe's list paged through by a bare
aiohttp client and the same rows read by one psycopg query, with nothing compared or
reported. The ratio says what the reconciliation itself costs on top.

    .venv/bin/python bench/reconcile.py [--sessions 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import psycopg

from bench.harness import ROOT, fresh_database, server
from service.onramp.models import SESSION_COLUMNS, SessionRow
from service.stripe_sim.app import DEFAULT_SECRET_KEY

DAYS = 30
GOAL_SECONDS = 30.0
WALLET = "0x52908400098527886E0F7030069857D2E4169EE7"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RANGE_READ = (
    f"SELECT {', '.join(SESSION_COLUMNS)} FROM onramp_sessions"  # noqa: S608 - column names
    " WHERE created_at >= %s AND created_at < %s ORDER BY id"
)
PLANTED = {"stripe_ahead": 300, "missing_locally": 200, "delivered_short": 100}


def session_id(at: datetime, rng: random.Random) -> str:
    value = (int(at.timestamp() * 1000) << 80) | rng.getrandbits(80)
    chars = [CROCKFORD[(value >> (5 * i)) & 31] for i in range(26)]
    return "ors_" + "".join(reversed(chars))


def month_of_sessions(
    count: int, start: datetime, seed: int = 19
) -> tuple[list[SessionRow], list[dict[str, Any]], dict[str, set[str]]]:
    """Our rows, Stripe's objects, and the sessions planted with each kind of drift."""
    rng = random.Random(seed)  # noqa: S311 - a repeatable month, not a secret
    rows, objects = [], []
    span = DAYS * 86400
    for index in range(count):
        at = start + timedelta(seconds=span * index / count)
        status = rng.choices(
            ["fulfillment_complete", "requires_payment", "rejected", "initialized"],
            [80, 10, 5, 5],
        )[0]
        source = Decimal(rng.randrange(1000, 100000)) / 100
        fee = (source * Decimal("0.015")).quantize(Decimal("0.01"))
        received = f"{source - fee - Decimal('0.01'):.2f}"
        tx = f"0x{rng.getrandbits(256):064x}" if status == "fulfillment_complete" else None
        row = SessionRow(
            WALLET,
            f"{source:.2f}",
            "usd",
            "musd",
            "mezo",
            id=session_id(at, rng),
            stripe_session_id=f"cos_{index:024d}",
            status=status,
            destination_amount=received if tx else None,
            transaction_hash=tx,
            delivery_status="confirmed" if tx else "not_started",
            delivered_amount=received if tx else None,
            network_fee_amount="0.01" if tx else None,
            transaction_fee_amount=f"{fee:.2f}" if tx else None,
            created_at=at,
            updated_at=at,
        )
        rows.append(row)
        objects.append(stripe_object(row))
    planted = plant_drift(rows, objects, rng)
    return rows, objects, planted


def stripe_object(row: SessionRow) -> dict[str, Any]:
    fulfilled = row.status == "fulfillment_complete"
    return {
        "id": row.stripe_session_id,
        "object": "crypto.onramp_session",
        "client_secret": f"{row.stripe_session_id}_secret_x",
        "created": int(row.created_at.timestamp()),
        "livemode": False,
        "metadata": {"onramp_session_id": row.id},
        "redirect_url": None,
        "status": row.status,
        "transaction_details": {
            "destination_amount": row.destination_amount,
            "destination_currency": "musd",
            "destination_network": "mezo",
            "fees": {
                "network_fee_amount": row.network_fee_amount,
                "transaction_fee_amount": row.transaction_fee_amount,
            }
            if fulfilled
            else None,
            "source_amount": row.source_amount,
            "source_currency": "usd",
            "transaction_id": row.transaction_hash,
            "wallet_address": row.wallet_address,
        },
    }


def plant_drift(
    rows: list[SessionRow], objects: list[dict[str, Any]], rng: random.Random
) -> dict[str, set[str]]:
    waiting = [i for i, row in enumerate(rows) if row.status == "requires_payment"]
    delivered = [i for i, row in enumerate(rows) if row.status == "fulfillment_complete"]
    ahead = rng.sample(waiting, PLANTED["stripe_ahead"])
    taken = set(ahead)
    rest = [i for i in range(len(rows)) if i not in taken]
    lost = rng.sample(rest, PLANTED["missing_locally"])
    short = rng.sample(sorted(set(delivered) - set(lost)), PLANTED["delivered_short"])
    for i in ahead:
        objects[i]["status"] = "fulfillment_processing"
    for i in short:
        rows[i].delivery_status, rows[i].delivered_amount = "mismatch", "1.00"
    planted = {
        "stripe_ahead": {rows[i].id for i in ahead},
        "missing_locally": {rows[i].id for i in lost},
        "delivered_short": {rows[i].id for i in short},
    }
    for i in sorted(lost, reverse=True):
        del rows[i]
    return planted


def load_database(url: str, rows: list[SessionRow]) -> None:
    columns = ", ".join(SESSION_COLUMNS)
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        with cursor.copy(f"COPY onramp_sessions ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([getattr(row, name) for name in SESSION_COLUMNS])
        connection.execute("ANALYZE onramp_sessions")


def serve_stripe(path: str) -> None:
    """The stand-in, loaded with Stripe's side of the month, on PORT."""
    import os

    import uvicorn

    from service.stripe_sim.app import StripeSimulator

    simulator = StripeSimulator()
    simulator.load(json.loads(Path(path).read_text()))
    uvicorn.run(simulator, host="127.0.0.1", port=int(os.environ["PORT"]), log_config=None)


async def baseline(database_url: str, stripe_url: str, since: datetime, until: datetime) -> int:
    """The same I/O with nothing done to it: every page of every day's window, eight
    windows at a time, and every row of the range in one query."""
    gate = asyncio.Semaphore(8)
    headers = {"Authorization": f"Bearer {DEFAULT_SECRET_KEY}"}
    listed = 0

    async def window(http: aiohttp.ClientSession, start: int, end: int) -> None:
        nonlocal listed
        params = {"created[gte]": str(start), "created[lt]": str(end), "limit": "100"}
        async with gate:
            while True:
                async with http.get(
                    f"{stripe_url}/v1/crypto/onramp_sessions", params=params, headers=headers
                ) as response:
                    page = await response.json()
                listed += len(page["data"])
                if not page["has_more"]:
                    return
                params["starting_after"] = page["data"][-1]["id"]

    async with aiohttp.ClientSession() as http:
        day = 86400
        start = int(since.timestamp())
        bounds = [
            (s, min(s + day, int(until.timestamp())))
            for s in range(start, int(until.timestamp()), day)
        ]
        await asyncio.gather(*(window(http, s, e) for s, e in bounds))
    async with await psycopg.AsyncConnection.connect(database_url) as connection:
        cursor = await connection.execute(RANGE_READ, (since, until))
        rows = await cursor.fetchall()
    return listed + len(rows)


def run_reconcile(
    database_url: str,
    stripe_url: str,
    since: datetime,
    until: datetime,
    work: Path,
    chart: Path | None = None,
) -> tuple[float, dict[str, Any], int]:
    env = {
        "DATABASE_URL": database_url,
        "STRIPE_SECRET_KEY": DEFAULT_SECRET_KEY,
        "STRIPE_API_BASE": stripe_url,
        "MEZO_RPC_URLS": "http://127.0.0.1:9",
        "PATH": "/usr/bin:/bin",
    }
    output = work / "report.json"
    started = time.perf_counter()
    done = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "onramp"),
            "reconcile",
            "--since",
            f"{since:%Y-%m-%dT%H:%M:%S}",
            "--until",
            f"{until:%Y-%m-%dT%H:%M:%S}",
            "--format",
            "json",
            "--output",
            str(output),
            *(["--chart", str(chart)] if chart else []),
        ],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(done.stderr)
    return elapsed, json.loads(output.read_text()), done.returncode


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-stripe":
        serve_stripe(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chart", type=Path, help="Keep the last round's chart here.")
    args = parser.parse_args()
    since = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
        days=DAYS
    )
    until = since + timedelta(days=DAYS)
    built = time.perf_counter()
    rows, objects, planted = month_of_sessions(args.sessions, since)
    with tempfile.TemporaryDirectory() as folder, fresh_database() as database_url:
        work = Path(folder)
        (work / "stripe.json").write_text(json.dumps(objects))
        load_database(database_url, rows)
        loaded = time.perf_counter() - built
        print(f"loaded {len(rows):,} sessions here, {len(objects):,} at Stripe in {loaded:.1f} s")
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve-stripe",
            str(work / "stripe.json"),
        ]
        with server(command, {}, work / "stripe.log") as stripe:
            timings: dict[str, list[float]] = {"reconcile": [], "baseline": []}
            for round_ in range(args.rounds):
                started = time.perf_counter()
                asyncio.run(baseline(database_url, stripe.url, since, until))
                timings["baseline"].append(time.perf_counter() - started)
                last = round_ == args.rounds - 1
                chart = args.chart.resolve() if args.chart and last else None
                elapsed, report, code = run_reconcile(
                    database_url, stripe.url, since, until, work, chart
                )
                timings["reconcile"].append(elapsed)
                found = {
                    kind: {r["session_id"] for r in report["drift"] if kind in r["drift"]}
                    for kind in planted
                }
                assert found == planted, "the reconciliation did not find exactly the planted drift"
                assert report["compared"] == len(objects)
                assert code == 1
                print(
                    f"round {round_ + 1}: reconcile {elapsed:.1f} s,"
                    f" baseline {timings['baseline'][-1]:.1f} s, drift found {report['drifted']}"
                    f" (planted {sum(map(len, planted.values()))})"
                )
    reconcile_s = statistics.median(timings["reconcile"])
    baseline_s = statistics.median(timings["baseline"])
    ratios = [b / r for r, b in zip(timings["reconcile"], timings["baseline"], strict=True)]
    print(
        json.dumps(
            {
                "sessions": len(objects),
                "days": DAYS,
                "reconcile_seconds_median": round(reconcile_s, 2),
                "baseline_seconds_median": round(baseline_s, 2),
                "ratio_median": round(statistics.median(ratios), 3),
                "goal_seconds": GOAL_SECONDS,
                "goal_met": reconcile_s < GOAL_SECONDS,
            },
            indent=2,
        )
    )
    if reconcile_s >= GOAL_SECONDS:
        sys.exit(1)


if __name__ == "__main__":
    main()
