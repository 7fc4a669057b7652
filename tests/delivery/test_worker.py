"""The delivery worker on a real anvil node, with the MUSD-like token, on both databases."""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta

import pytest
from eth_account import Account
from sqlalchemy import text
from sqlmodel import col, select

from service.chain.rpc import Chains
from service.columns import utcnow
from service.database import Database
from service.delivery.models import DeliveryCheck
from service.delivery.worker import DeliveryWorker
from service.onramp.models import OnrampSession
from service.settings import ChainSettings, DatabaseSettings
from tests.conftest import empty_tables
from tests.delivery.conftest import MUSD_UNIT, check_row, fulfilled_session, mine, send
from tests.support.anvil import Anvil
from tests.support.orm import orm_session
from tests.support.rpc_trouble import TroubledNode

UNIT = MUSD_UNIT


def chain_settings(anvil: Anvil, musd: str, **env: str) -> ChainSettings:
    return ChainSettings.model_validate(
        {"MEZO_RPC_URLS": anvil.url, "MUSD_TOKEN_ADDRESS": musd, **env}
    )


async def fulfilled(
    database: Database, amount: str, tx_hash: str | None, wallet: str | None = None
) -> OnrampSession:
    return await fulfilled_session(database, amount, tx_hash, wallet)


async def check(
    database: Database, settings: ChainSettings, session_id: str, batched: bool = True
) -> OnrampSession:
    """Make the session's check due now, run one worker round, read the session back."""
    async with database.engine.begin() as connection:
        await connection.execute(
            text("UPDATE delivery_checks SET due_at = :t WHERE onramp_session_id = :id"),
            {"t": utcnow() - timedelta(seconds=1), "id": session_id},
        )
    chains = Chains(settings)
    try:
        await DeliveryWorker(database, chains, settings, batched_rpc=batched).run_once()
    finally:
        await chains.close()
    async with orm_session(database) as db:
        session = await db.get(OnrampSession, session_id)
        assert session is not None
        return session


@pytest.mark.parametrize("batched", [True, False])
async def test_the_right_transfer_is_confirmed(
    anvil: Anvil, musd: str, database: Database, batched: bool
) -> None:
    wallet = str(Account.create().address)
    tx = send(anvil, musd, wallet, 98_49 * UNIT // 100)
    session = await fulfilled(database, "98.49", tx, wallet)
    checked = await check(database, chain_settings(anvil, musd), session.id, batched)
    assert checked.delivery_status == "confirmed"
    assert checked.delivered_amount == "98.49"
    assert checked.delivery_confirmations >= 1
    assert checked.delivery_block_number is not None
    assert checked.delivery_checked_at is not None
    async with orm_session(database) as db:
        done = await db.get(DeliveryCheck, session.id)
    assert done is not None
    assert done.finished_at is not None


async def test_pending_until_enough_confirmations_then_confirmed(
    anvil: Anvil, musd: str, database: Database
) -> None:
    settings = chain_settings(anvil, musd, DELIVERY_CONFIRMATIONS="3")
    wallet = str(Account.create().address)
    session = await fulfilled(database, "10", send(anvil, musd, wallet, 10 * UNIT), wallet)
    first = await check(database, settings, session.id)
    assert (first.delivery_status, first.delivery_detail) == ("pending", "1 of 3 confirmations")
    mine(anvil, 2)
    second = await check(database, settings, session.id)
    assert second.delivery_status == "confirmed"
    assert second.delivery_confirmations == 3


async def test_several_transfers_in_one_transaction_add_up(
    anvil: Anvil, musd: str, database: Database
) -> None:
    wallet = str(Account.create().address)
    token = anvil.contract("TestMUSD", musd)
    tx = token.functions.transferInParts(wallet, [6 * UNIT, 4 * UNIT]).transact(
        {"from": anvil.funder}
    )
    anvil.w3.eth.wait_for_transaction_receipt(tx)
    session = await fulfilled(database, "10", "0x" + bytes(tx).hex(), wallet)
    checked = await check(database, chain_settings(anvil, musd), session.id)
    assert (checked.delivery_status, checked.delivered_amount) == ("confirmed", "10")


@pytest.mark.parametrize(
    ("case", "status", "detail"),
    [
        ("short", "mismatch", "short by 1"),
        ("other_wallet", "mismatch", "another address"),
        ("other_token", "mismatch", "different token"),
        ("reverted", "failed", "reverted"),
    ],
)
async def test_wrong_deliveries_say_what_went_wrong(
    anvil: Anvil, musd: str, database: Database, case: str, status: str, detail: str
) -> None:
    wallet = str(Account.create().address)
    if case == "short":
        tx = send(anvil, musd, wallet, 9 * UNIT)
    elif case == "other_wallet":
        tx = send(anvil, musd, str(Account.create().address), 10 * UNIT)
    elif case == "other_token":
        other = anvil.deploy("TestMUSD")
        minted = anvil.contract("TestMUSD", other).functions.mint(wallet, 10 * UNIT)
        sent = minted.transact({"from": anvil.funder})
        anvil.w3.eth.wait_for_transaction_receipt(sent)
        tx = "0x" + bytes(sent).hex()
    else:
        poor = list(anvil.w3.eth.accounts)[3]  # holds no tokens: the transfer reverts
        call = anvil.contract("TestMUSD", musd).functions.transfer(wallet, 10 * UNIT)
        raw = call.transact({"from": poor, "gas": 100_000})
        anvil.w3.eth.wait_for_transaction_receipt(raw)
        tx = "0x" + bytes(raw).hex()
    session = await fulfilled(database, "10", tx, wallet)
    checked = await check(database, chain_settings(anvil, musd), session.id)
    assert checked.delivery_status == status
    assert detail in (checked.delivery_detail or "")


async def test_a_transaction_that_never_appears_fails_at_the_time_out(
    anvil: Anvil, musd: str, database: Database
) -> None:
    session = await fulfilled(database, "10", "0x" + secrets.token_hex(32))
    pending = await check(database, chain_settings(anvil, musd), session.id)
    assert pending.delivery_status == "pending"
    assert "not on the chain" in (pending.delivery_detail or "")
    failed = await check(
        database, chain_settings(anvil, musd, DELIVERY_TIMEOUT_SECONDS="1"), session.id
    )
    assert failed.delivery_status == "failed"
    assert "not decided within 1 s" in (failed.delivery_detail or "")


async def test_without_a_transaction_id_the_transfer_is_found_in_the_logs(
    anvil: Anvil, musd: str, database: Database
) -> None:
    wallet = str(Account.create().address)
    session = await fulfilled(database, "12.5", None, wallet)
    tx = send(anvil, musd, wallet, 125 * UNIT // 10)
    checked = await check(database, chain_settings(anvil, musd), session.id)
    assert checked.delivery_status == "confirmed"
    assert checked.delivery_detail == f"1 confirmation; found transaction {tx}"
    assert checked.transaction_hash is None  # Stripe's word only
    assert (await check_row(database, session.id)).found_transaction_hash == tx


async def test_the_second_rpc_url_serves_when_the_first_is_down(
    anvil: Anvil, musd: str, database: Database
) -> None:
    wallet = str(Account.create().address)
    session = await fulfilled(database, "1", send(anvil, musd, wallet, UNIT), wallet)
    settings = chain_settings(anvil, musd, MEZO_RPC_URLS=f"http://127.0.0.1:9,{anvil.url}")
    assert (await check(database, settings, session.id)).delivery_status == "confirmed"


async def test_with_every_node_down_it_stays_pending_and_confirms_later(
    anvil: Anvil, musd: str, database: Database
) -> None:
    wallet = str(Account.create().address)
    session = await fulfilled(database, "1", send(anvil, musd, wallet, UNIT), wallet)
    down = chain_settings(anvil, musd, MEZO_RPC_URLS="http://127.0.0.1:9")
    pending = await check(database, down, session.id)
    assert pending.delivery_status == "pending"
    assert "RPC" in (pending.delivery_detail or "")
    assert (
        await check(database, chain_settings(anvil, musd), session.id)
    ).delivery_status == "confirmed"


async def test_a_node_on_another_chain_is_refused(
    anvil: Anvil, musd: str, database: Database
) -> None:
    wallet = str(Account.create().address)
    session = await fulfilled(database, "1", send(anvil, musd, wallet, UNIT), wallet)
    wrong_chain = chain_settings(anvil, musd, MEZO_CHAIN_ID="1")
    checked = await check(database, wrong_chain, session.id)
    assert checked.delivery_status == "pending"


async def test_a_reorganised_block_is_rechecked_and_ends_right(
    anvil: Anvil, musd: str, database: Database
) -> None:
    settings = chain_settings(anvil, musd, DELIVERY_CONFIRMATIONS="3")
    wallet = str(Account.create().address)
    signer = Account.from_key("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
    token = anvil.contract("TestMUSD", musd)
    call = token.functions.transfer(wallet, 5 * UNIT).build_transaction(
        {
            "from": signer.address,
            "nonce": anvil.w3.eth.get_transaction_count(signer.address),
            "gas": 100_000,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 10**9,
            "chainId": anvil.chain_id,
        }
    )
    raw = signer.sign_transaction(call).raw_transaction
    snapshot = anvil.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    tx = "0x" + bytes(anvil.w3.eth.send_raw_transaction(raw)).hex()
    session = await fulfilled(database, "5", tx, wallet)
    first = await check(database, settings, session.id)
    assert first.delivery_status == "pending"
    first_block = first.delivery_block_hash

    anvil.w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    mine(anvil, 1)  # a different block at the same height, without the transfer
    gone = await check(database, settings, session.id)
    assert gone.delivery_status == "pending"
    assert "not on the chain" in (gone.delivery_detail or "")

    anvil.w3.eth.send_raw_transaction(raw)  # the same transaction, in a new block
    mine(anvil, 3)
    final = await check(database, settings, session.id)
    assert final.delivery_status == "confirmed"
    assert final.delivery_block_hash != first_block


async def test_two_workers_check_each_due_session_once(
    anvil: Anvil, musd: str, migrated: dict[str, str]
) -> None:
    """PostgreSQL's SKIP LOCKED: two workers with their own pools split the due checks."""
    database_url = migrated["postgresql"]
    await empty_tables(database_url)
    database = Database(DatabaseSettings(DATABASE_URL=database_url))
    sessions = [await fulfilled(database, "1", "0x" + secrets.token_hex(32)) for _ in range(200)]
    settings = chain_settings(anvil, musd)
    second_db = Database(DatabaseSettings(DATABASE_URL=database_url))
    rpcs = [Chains(settings), Chains(settings)]
    try:
        workers = [
            DeliveryWorker(database, rpcs[0], settings, batch_size=150),
            DeliveryWorker(second_db, rpcs[1], settings, batch_size=150),
        ]
        counts = await asyncio.gather(*(w.run_once() for w in workers))
    finally:
        for rpc in rpcs:
            await rpc.close()
        await second_db.dispose()
    assert sum(counts) == 200
    assert all(count > 0 for count in counts)
    async with orm_session(database) as db:
        attempts = (
            await db.exec(
                select(DeliveryCheck.attempts).where(
                    col(DeliveryCheck.onramp_session_id).in_([s.id for s in sessions])
                )
            )
        ).all()
    await database.dispose()
    assert sorted(attempts) == [1] * 200


async def test_a_failing_node_is_skipped_after_repeated_failures(anvil: Anvil, musd: str) -> None:
    from prometheus_client import REGISTRY

    rpc = Chains(chain_settings(anvil, musd, MEZO_RPC_URLS=f"http://127.0.0.1:9,{anvil.url}")).mezo
    try:

        def dead_node_errors() -> float:
            value = REGISTRY.get_sample_value(
                "onramp_rpc_calls_total", {"host": "127.0.0.1:9", "outcome": "error"}
            )
            return value or 0.0

        for _ in range(3):
            assert await rpc.call(lambda w3: w3.eth.chain_id) == anvil.chain_id
        errors = dead_node_errors()
        assert rpc.health[0].failures == 3
        assert await rpc.call(lambda w3: w3.eth.chain_id) == anvil.chain_id
        assert dead_node_errors() == errors  # the open circuit was not tried
        assert rpc.report()["nodes"][1]["status"] == "ok"
    finally:
        await rpc.close()


async def test_a_delivered_transfer_short_of_confirmations_never_times_out_into_failed(
    anvil: Anvil, musd: str, database: Database
) -> None:
    wallet = str(Account.create().address)
    session = await fulfilled(database, "4", send(anvil, musd, wallet, 4 * UNIT), wallet)
    settings = chain_settings(
        anvil, musd, DELIVERY_CONFIRMATIONS="50", DELIVERY_TIMEOUT_SECONDS="1"
    )
    checked = await check(database, settings, session.id)
    assert checked.delivery_status == "pending"
    assert checked.delivered_amount == "4"


async def test_one_transfer_proves_one_session_only(
    anvil: Anvil, musd: str, database: Database
) -> None:
    wallet = str(Account.create().address)
    first = await fulfilled(database, "6", None, wallet)
    second = await fulfilled(database, "6", None, wallet)
    send(anvil, musd, wallet, 6 * UNIT)
    settings = chain_settings(anvil, musd)
    statuses = sorted(
        [
            (await check(database, settings, first.id)).delivery_status,
            (await check(database, settings, second.id)).delivery_status,
        ]
    )
    assert statuses == ["confirmed", "pending"]


async def test_a_check_held_by_a_worker_is_not_decided_twice(
    anvil: Anvil, musd: str, database: Database
) -> None:
    wallet = str(Account.create().address)
    session = await fulfilled(database, "1", send(anvil, musd, wallet, UNIT), wallet)
    async with database.engine.begin() as connection:
        await connection.execute(
            text("UPDATE delivery_checks SET claimed_until = :t WHERE onramp_session_id = :id"),
            {"t": utcnow() + timedelta(minutes=5), "id": session.id},
        )
    settings = chain_settings(anvil, musd)
    chains = Chains(settings)
    try:
        result = await DeliveryWorker(database, chains, settings).check(session.id)
    finally:
        await chains.close()
    assert (result.status, result.detail) == (
        "pending",
        "a worker is checking this session right now",
    )
    async with orm_session(database) as db:
        stored = await db.get(OnrampSession, session.id)
    assert stored is not None
    assert stored.delivery_checked_at is None


async def test_a_node_answering_nonsense_is_a_failing_node(
    anvil: Anvil, musd: str, database: Database, troubled_node: TroubledNode
) -> None:
    wallet = str(Account.create().address)
    session = await fulfilled(database, "10", send(anvil, musd, wallet, 10 * UNIT), wallet)
    troubled_node.mode = "malformed"  # receipts and blocks come back as bare numbers
    settings = chain_settings(anvil, musd, MEZO_RPC_URLS=troubled_node.url)
    checked = await check(database, settings, session.id)
    assert checked.delivery_status == "pending"
    assert checked.delivery_detail is not None
    assert "No chain RPC node answered" in checked.delivery_detail
    troubled_node.mode = "healthy"
    assert (await check(database, settings, session.id)).delivery_status == "confirmed"


async def test_a_failed_round_hands_its_claims_back_after_a_pause(
    anvil: Anvil, musd: str, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    wallet = str(Account.create().address)
    session = await fulfilled(database, "10", send(anvil, musd, wallet, 10 * UNIT), wallet)

    async def broken(*_: object) -> None:
        raise RuntimeError("a bug in the round")

    monkeypatch.setattr(DeliveryWorker, "_decide_and_record", broken)
    with pytest.raises(RuntimeError):
        await check(database, chain_settings(anvil, musd), session.id)
    async with orm_session(database) as db:
        held = await db.get(DeliveryCheck, session.id)
    assert held is not None
    assert held.claimed_until is None
    assert held.finished_at is None
    assert held.due_at > utcnow() + timedelta(seconds=5)
