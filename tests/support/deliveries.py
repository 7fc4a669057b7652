"""Fulfilled sessions whose MUSD really went out on the run's anvil, for worker tests
that run the worker as a process."""

from __future__ import annotations

import secrets

import psycopg
from eth_account import Account

from service.columns import new_id
from tests.support.anvil import Anvil

UNIT = 10**18


def delivered_sessions(anvil: Anvil, token: str, database_url: str, count: int) -> list[str]:
    """`count` fulfilled sessions whose MUSD really arrived, each due for its check."""
    contract = anvil.contract("TestMUSD", token)
    rows = []
    for _ in range(count):
        wallet = str(Account.create().address)
        tx = contract.functions.transfer(wallet, 25 * UNIT).transact({"from": anvil.funder})
        rows.append((new_id("ors"), wallet, f"cos_{secrets.token_hex(12)}", "0x" + bytes(tx).hex()))
    anvil.w3.eth.wait_for_transaction_receipt(tx)
    with psycopg.connect(database_url) as connection:
        connection.cursor().executemany(
            "INSERT INTO onramp_sessions (id, wallet_address, stripe_session_id, livemode,"
            " status, source_amount, source_currency, destination_currency,"
            " destination_network, destination_amount, transaction_hash, delivery_status,"
            " delivery_confirmations, created_at, updated_at) VALUES (%s, %s, %s, false,"
            " 'fulfillment_complete', '26.00', 'usd', 'musd', 'mezo', '25', %s, 'pending', 0,"
            " now(), now())",
            [(own, wallet, stripe_id, tx_hash) for own, wallet, stripe_id, tx_hash in rows],
        )
        connection.cursor().executemany(
            "INSERT INTO delivery_checks (onramp_session_id, due_at, attempts, created_at)"
            " VALUES (%s, now(), 0, now())",
            [(row[0],) for row in rows],
        )
    return [row[0] for row in rows]


def delivery_statuses(database_url: str, ids: list[str]) -> dict[str, str]:
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT id, delivery_status FROM onramp_sessions WHERE id = ANY(%s)", (ids,)
        ).fetchall()
    return {own: status for own, status in rows}
