"""Delivery verification: JSON-RPC batches against one call at a time, in one run.

Starts anvil with the MUSD-like token, makes N real transfers to N wallets, stores N
fulfilled sessions with due delivery checks on PostgreSQL, and lets the worker decide
them all, once with batched RPC and once without (checks reset in between).

    .venv/bin/python bench/delivery.py [--sessions 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from eth_account import Account

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.webhooks import bench_database
from service.chain.rpc import Chains
from service.database import Database
from service.delivery.worker import DeliveryWorker
from service.logs import configure_logging
from service.settings import ChainSettings, DatabaseSettings
from tests.support.anvil import start_anvil

FUNDER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # anvil's own
UNIT = 10**18
BATCH = 50


def make_transfers(anvil: Any, token: str, count: int) -> list[tuple[str, str]]:
    """`count` signed transfers to fresh wallets, sent in batches; (wallet, tx hash)."""
    funder = Account.from_key(FUNDER_KEY)
    contract = anvil.contract("TestMUSD", token)
    nonce = anvil.w3.eth.get_transaction_count(funder.address)
    wallets = [str(Account.create().address) for _ in range(count)]
    raw = []
    for offset, wallet in enumerate(wallets):
        tx = contract.functions.transfer(wallet, UNIT).build_transaction(
            {
                "from": funder.address,
                "nonce": nonce + offset,
                "gas": 80_000,
                "maxFeePerGas": 10**10,
                "maxPriorityFeePerGas": 10**9,
                "chainId": anvil.chain_id,
            }
        )
        raw.append("0x" + bytes(funder.sign_transaction(tx).raw_transaction).hex())
    hashes = []
    # Batches small enough that anvil answers each well within the provider's time-out
    # (5 s) on a busy machine.
    for start in range(0, count, BATCH):
        answers = anvil.w3.provider.make_batch_request(
            [("eth_sendRawTransaction", [r]) for r in raw[start : start + BATCH]]
        )
        hashes += [answer["result"] for answer in answers]
    wait_for_receipts(anvil, dict(zip(hashes, raw, strict=True)))
    anvil.w3.provider.make_request("anvil_mine", ["0x2"])
    return list(zip(wallets, hashes, strict=True))


def wait_for_receipts(anvil: Any, sent: dict[str, str], seconds: float = 120) -> None:
    """Until anvil has mined every transfer (`sent`: each one's raw transaction by its
    hash): on a busy machine it can still be taking them in when the worker starts,
    which then finds no receipt and checks again later, after the timed run. A transfer
    anvil lost leaves every later nonce pending behind it, so what makes no progress for
    a few seconds is sent again (anvil ignores what it already holds)."""
    deadline = time.monotonic() + seconds
    waiting = list(sent)
    progressed = time.monotonic()
    while waiting:
        answers = []
        for start in range(0, len(waiting), BATCH):
            batch = [("eth_getTransactionReceipt", [tx]) for tx in waiting[start : start + BATCH]]
            answers += anvil.w3.provider.make_batch_request(batch)
        still = [tx for tx, answer in zip(waiting, answers, strict=True) if not answer["result"]]
        if len(still) < len(waiting):
            progressed = time.monotonic()
        waiting = still
        if waiting and time.monotonic() > deadline:
            raise RuntimeError(f"{len(waiting)} transfers were never mined")
        if waiting and time.monotonic() - progressed > 5:
            for start in range(0, len(waiting), BATCH):
                again = [sent[tx] for tx in waiting[start : start + BATCH]]
                anvil.w3.provider.make_batch_request(
                    [("eth_sendRawTransaction", [raw]) for raw in again]
                )
            progressed = time.monotonic()
        if waiting:
            time.sleep(0.2)


def store_sessions(url: str, transfers: list[tuple[str, str]]) -> None:
    with psycopg.connect(url) as connection:
        connection.execute("DELETE FROM delivery_checks")
        connection.execute("DELETE FROM onramp_sessions")
        with connection.cursor().copy(
            "COPY onramp_sessions (id, wallet_address, stripe_session_id, livemode, status,"
            " source_amount, source_currency, destination_currency, destination_network,"
            " destination_amount, transaction_hash, delivery_status, delivery_confirmations,"
            " created_at, updated_at) FROM STDIN"
        ) as copy:
            for number, (wallet, tx) in enumerate(transfers):
                copy.write_row(
                    (
                        f"ors_delivery{number:019d}",
                        wallet,
                        f"cos_{secrets.token_hex(8)}",
                        False,
                        "fulfillment_complete",
                        "1.00",
                        "usd",
                        "musd",
                        "mezo",
                        "1",
                        tx,
                        "pending",
                        0,
                        "now",
                        "now",
                    )
                )
        connection.execute(
            "INSERT INTO delivery_checks (onramp_session_id, due_at, attempts, created_at)"
            " SELECT id, now() - interval '1 second', 0, now() FROM onramp_sessions"
        )


def reset_checks(url: str) -> None:
    with psycopg.connect(url) as connection:
        connection.execute(
            "UPDATE delivery_checks SET finished_at = NULL, claimed_until = NULL, attempts = 0,"
            " due_at = now() - interval '1 second'"
        )
        connection.execute("UPDATE onramp_sessions SET delivery_status = 'pending'")
        connection.execute("DELETE FROM delivery_credits")


async def decide_all(url: str, settings: ChainSettings, batched: bool) -> dict[str, Any]:
    database = Database(DatabaseSettings(DATABASE_URL=url))
    chains = Chains(settings)
    worker = DeliveryWorker(database, chains, settings, batch_size=100, batched_rpc=batched)
    started = time.perf_counter()
    checked = 0
    while (count := await worker.run_once()) > 0:
        checked += count
    elapsed = time.perf_counter() - started
    await chains.close()
    await database.dispose()
    with psycopg.connect(url) as connection:
        confirmed = connection.execute(
            "SELECT count(*) FROM onramp_sessions WHERE delivery_status = 'confirmed'"
        ).fetchone()
    return {
        "batched": batched,
        "checked": checked,
        "confirmed": confirmed[0] if confirmed else 0,
        "seconds": elapsed,
        "per_second": checked / elapsed,
    }


def measure(sessions: int) -> dict[str, Any]:
    """Both modes on the same transfers and sessions; the figures and the speed-up."""
    configure_logging("warning", "json")  # not a debug line per decided session
    anvil = start_anvil()
    try:
        token = anvil.deploy_token(10 * sessions * UNIT)
        transfers = make_transfers(anvil, token, sessions)
        settings = ChainSettings.model_validate(
            {"MEZO_RPC_URLS": anvil.url, "MUSD_TOKEN_ADDRESS": token}
        )
        with bench_database(0) as url:
            store_sessions(url, transfers)
            batched = asyncio.run(decide_all(url, settings, batched=True))
            reset_checks(url)
            single = asyncio.run(decide_all(url, settings, batched=False))
    finally:
        anvil.stop()
    speed_up = single["seconds"] / batched["seconds"]
    return {
        "benchmark": "delivery verification",
        "sessions": sessions,
        "batched": batched,
        "one_call_at_a_time": single,
        "speed_up": speed_up,
        "goal": {"all_within_seconds": 60, "speed_up_at_least": 5},
        "met": {
            "all_within_seconds": batched["seconds"] <= 60 and batched["confirmed"] == sessions,
            "speed_up": speed_up >= 5,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "delivery.json")
    args = parser.parse_args()
    summary = measure(args.sessions)
    batched, single = summary["batched"], summary["one_call_at_a_time"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    print("| mode | sessions decided | confirmed | seconds | sessions/s |")
    print("|---|---|---|---|---|")
    for name, run in (("batched RPC", batched), ("one call at a time", single)):
        print(
            f"| {name} | {run['checked']} | {run['confirmed']} | {run['seconds']:.1f} "
            f"| {run['per_second']:.0f} |"
        )
    print(f"\nspeed-up of batching: {summary['speed_up']:.2f}x (goal >= 5x)")


if __name__ == "__main__":
    main()
