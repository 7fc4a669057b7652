"""Session reads: `GET /api/v1/onramp/sessions/{id}` and the wallet's list, against
minimal handlers doing the same SELECT (bench/baseline_sessions.py).

Both sides read the same sessions: 32 wallets with 40 finished sessions each, stored
before the first round. The service's side sends each wallet's Bearer token; the
baseline's names the wallet in a header and checks nothing.

    .venv/bin/python bench/reads.py [--rounds 3] [--seconds 6] [--workers 1]
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

import psycopg
from eth_account import Account

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import P99_GOAL, Comparison, compare, same_file, write_requests
from bench.stack import Stack, running_stack, wallet_token
from service.columns import new_id

GOAL = {"throughput_ratio_at_least": 0.8, **P99_GOAL}
WALLETS = 32
SESSIONS_PER_WALLET = 40
PATH = "/api/v1/onramp/sessions"


def seed(url: str) -> dict[str, list[str]]:
    """Finished sessions for each of the benchmark's wallets: wallet -> session ids."""
    owned: dict[str, list[str]] = {}
    with (
        psycopg.connect(url) as connection,
        connection.cursor().copy(
            "COPY onramp_sessions (id, wallet_address, stripe_session_id, client_secret,"
            " livemode, status, source_amount, source_currency, destination_currency,"
            " destination_network, destination_amount, transaction_hash, delivery_status,"
            " delivery_confirmations, created_at, updated_at) FROM STDIN"
        ) as copy,
    ):
        for _ in range(WALLETS):
            wallet = str(Account.create().address)
            owned[wallet] = []
            for _ in range(SESSIONS_PER_WALLET):
                session_id = new_id("ors")
                stripe_id = f"cos_{secrets.token_hex(12)}"
                owned[wallet].append(session_id)
                copy.write_row(
                    (
                        session_id,
                        wallet,
                        stripe_id,
                        f"{stripe_id}_secret_{secrets.token_hex(12)}",
                        False,
                        "fulfillment_complete",
                        "100.00",
                        "usd",
                        "musd",
                        "mezo",
                        "99.120000000000000000",
                        "0x" + secrets.token_hex(32),
                        "confirmed",
                        1,
                        "now",
                        "now",
                    )
                )
    return owned


def _headers(side: str, wallet: str) -> dict[str, str]:
    if side == "service":
        return {"Authorization": f"Bearer {wallet_token(wallet)}"}
    return {"X-Wallet-Address": wallet}


def read_one_requests(work: Path, owned: dict[str, list[str]], side: str) -> Path:
    """Every stored session read by its owner, wallets interleaved."""
    headers = {wallet: _headers(side, wallet) for wallet in owned}
    requests: list[dict[str, Any]] = [
        {"method": "GET", "path": f"{PATH}/{ids[n]}", "headers": headers[wallet]}
        for n in range(SESSIONS_PER_WALLET)
        for wallet, ids in owned.items()
    ]
    return write_requests(work / f"read-one-{side}.jsonl", requests)


def list_requests(work: Path, owned: dict[str, list[str]], side: str) -> Path:
    """Each wallet's first page (20 of its 40 sessions, newest first)."""
    requests: list[dict[str, Any]] = [
        {"method": "GET", "path": PATH, "headers": _headers(side, wallet)} for wallet in owned
    ]
    return write_requests(work / f"list-{side}.jsonl", requests)


READS = {
    "session read": (read_one_requests, "GET /api/v1/onramp/sessions/{id}"),
    "session list": (list_requests, "GET /api/v1/onramp/sessions (a page of 20)"),
}


def measure(
    stack: Stack,
    *,
    rounds: int,
    seconds: float,
    concurrency: int,
    which: tuple[str, ...] = tuple(READS),
) -> list[Comparison]:
    """Reading one session, then listing a page (or those named in `which`), each
    against its baseline."""
    owned = seed(stack.database_url)
    results = []
    for name in which:
        build, note = READS[name]
        files = {side: build(stack.work, owned, side) for side in ("service", "baseline")}
        results.append(
            compare(
                name,
                {side: stack.side(side, same_file(file)) for side, file in files.items()},
                work=stack.work,
                rounds=rounds,
                seconds=seconds,
                concurrency=concurrency,
                expected={200},
                goal=GOAL,
                note=note,
            )
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="onramp-bench-"))
    with running_stack(work, args.workers, with_stripe=False) as stack:
        results = measure(
            stack, rounds=args.rounds, seconds=args.seconds, concurrency=args.concurrency
        )
    for result in results:
        print(result.describe())


if __name__ == "__main__":
    main()
