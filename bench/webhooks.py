"""Webhook ingestion: the service against the irreducible baseline, in one run.

Every event is signed and moves its session one status forward (each session gets
`requires_payment`, then `fulfillment_processing`), as Stripe's traffic does; each side
and round has fresh sessions. The baseline is bench/baseline_webhooks.py.

    .venv/bin/python bench/webhooks.py [--rounds 3] [--seconds 10] [--workers 1]

`bench/run` runs it with the other benchmarks; this runs it alone.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import P99_GOAL, Comparison, compare, fresh_database
from bench.stack import WEBHOOK_SECRET, Stack, running_stack

GOAL = {"throughput_ratio_at_least": 0.8, **P99_GOAL}
WALLET = "0x52908400098527886E0F7030069857D2E4169EE7"
# More events than the fastest side can take in a slice's time, so none runs out.
EVENTS_PER_SECOND_CEILING = 1500


def seed_sessions(url: str, prefix: str, count: int) -> None:
    """`count` initialized sessions whose Stripe ids are `{prefix}{i}`."""
    tag = prefix.removeprefix("cos_bench_").rstrip("_")[:8]
    with (
        psycopg.connect(url) as connection,
        connection.cursor().copy(
            "COPY onramp_sessions (id, wallet_address, stripe_session_id, livemode, status,"
            " source_amount, source_currency, destination_currency, destination_network,"
            " delivery_status, delivery_confirmations, created_at, updated_at) FROM STDIN"
        ) as copy,
    ):
        for i in range(count):
            copy.write_row(
                (
                    f"ors_{tag:0>8}{i:020d}",
                    WALLET,
                    f"{prefix}{i}",
                    False,
                    "initialized",
                    "100.00",
                    "usd",
                    "musd",
                    "mezo",
                    "not_started",
                    0,
                    "now",
                    "now",
                )
            )


@contextmanager
def bench_database(sessions: int) -> Iterator[str]:
    """A fresh database with `sessions` sessions `cos_bench_{i}` (bench/delivery.py)."""
    with fresh_database() as url:
        if sessions:
            seed_sessions(url, "cos_bench_", sessions)
        yield url


def signed_events(prefix: str, first: int, sessions: int, path: Path) -> Path:
    """Each session of the slice moves twice, as Stripe reports a real session: every
    event applies (a status step forward), as in the baseline's conditional UPDATE."""
    timestamp = int(time.time())
    with path.open("w") as out:
        for status in ("requires_payment", "fulfillment_processing"):
            for session in range(first, first + sessions):
                event = {
                    "id": f"evt_{secrets.token_hex(12)}",
                    "object": "event",
                    "type": "crypto.onramp_session_updated",
                    "created": timestamp,
                    "livemode": False,
                    "data": {
                        "object": {
                            "id": f"{prefix}{session}",
                            "object": "crypto.onramp_session",
                            "status": status,
                            "metadata": {},
                            "transaction_details": {},
                        }
                    },
                }
                body = json.dumps(event)
                mac = hmac.new(
                    WEBHOOK_SECRET.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256
                )
                headers = {
                    "Stripe-Signature": f"t={timestamp},v1={mac.hexdigest()}",
                    "Content-Type": "application/json",
                }
                request = {"method": "POST", "path": "/api/v1/webhooks/stripe", "headers": headers}
                out.write(json.dumps({**request, "body": body}) + "\n")
    return path


def measure(stack: Stack, *, rounds: int, seconds: float, concurrency: int) -> Comparison:
    """Service against baseline, fresh sessions for every side, round and warm-up."""
    per_slice = int(max(seconds, 1.0) * EVENTS_PER_SECOND_CEILING / 2)
    prefix = f"cos_bench_{secrets.token_hex(4)}_"
    slices = 2 * (rounds + 1)
    seed_sessions(stack.database_url, prefix, per_slice * slices)

    def events(side_number: int) -> Any:
        def for_round(number: int) -> Path:
            slot = (number + 1) * 2 + side_number  # the warm-up is round -1
            path = stack.work / f"webhooks-{prefix}{slot}.jsonl"
            return signed_events(prefix, slot * per_slice, per_slice, path)

        return for_round

    return compare(
        "webhook ingestion",
        {
            "service": stack.side("service", events(0)),
            "baseline": stack.side("baseline", events(1)),
        },
        work=stack.work,
        rounds=rounds,
        seconds=seconds,
        concurrency=concurrency,
        expected={200},
        unit="events/s",
        goal=GOAL,
        note="POST /api/v1/webhooks/stripe, signed events that each move a session forward",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="onramp-bench-"))
    with running_stack(work, args.workers, with_stripe=False) as stack:
        result = measure(
            stack, rounds=args.rounds, seconds=args.seconds, concurrency=args.concurrency
        )
    print(result.describe())
    print(json.dumps(result.as_json()["sides"], indent=2))


if __name__ == "__main__":
    main()
