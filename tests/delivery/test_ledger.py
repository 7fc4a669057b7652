"""One on-chain transfer proves one session, however it is named and whoever races for it.

Sessions are made through the real app and the Stripe stand-in; Stripe's word arrives by
signed webhook, by `onramp sessions replay` and by an operator's sync; the worker reads
the run's anvil. Every test runs on PostgreSQL and SQLite unless it says otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.chain.rpc import Chains
from service.database import Database
from service.delivery.worker import DeliveryWorker
from service.settings import ChainSettings, DatabaseSettings
from tests.delivery.conftest import (
    MUSD_UNIT,
    check_row,
    credits_of,
    fulfilled_session,
    run_rounds,
    send,
    send_from,
    session_row,
    upper_case,
)
from tests.onramp.conftest import ADMIN_KEY, Caller
from tests.support.anvil import Anvil
from tests.support.processes import run_onramp
from tests.support.stripe import RunningStripe
from tests.support.webhooks import WEBHOOK_SECRET, encode, onramp_event, sign


@pytest.fixture
def chain_env(anvil: Anvil, musd: str) -> dict[str, str]:
    return {"MEZO_RPC_URLS": anvil.url, "MUSD_TOKEN_ADDRESS": musd}


@pytest.fixture
async def app_client(
    make_onramp_app: Callable[..., Litestar], chain_env: dict[str, str]
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    app = make_onramp_app(STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET, **chain_env)
    async with AsyncTestClient(app=app) as client:
        yield client


def chain_settings(chain_env: dict[str, str], **env: str) -> ChainSettings:
    return ChainSettings.model_validate({**chain_env, **env})


async def two_sessions(caller: Caller) -> tuple[dict[str, Any], dict[str, Any]]:
    first = (await caller.create()).json()
    second = (await caller.create()).json()
    return first, second


async def post_event(client: AsyncTestClient[Litestar], event: dict[str, Any]) -> str:
    body = encode(event)
    answer = await client.post(
        "/api/v1/webhooks/stripe", content=body, headers={"Stripe-Signature": sign(body)}
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["outcome"])


async def fulfilled_without_an_id(
    client: AsyncTestClient[Litestar], amount: str
) -> tuple[Caller, dict[str, Any]]:
    """A new session that Stripe reports fulfilled, without naming the transaction."""
    caller = Caller(client, str(Account.create().address))
    created = (await caller.create()).json()
    fulfilment = onramp_event(
        created["stripeSessionId"], "fulfillment_complete", destination_amount=amount
    )
    assert await post_event(client, fulfilment) == "applied"
    return caller, created


async def deliveries(caller: Caller, *ids: str) -> list[dict[str, Any]]:
    return [(await caller.get(f"/api/v1/onramp/sessions/{i}")).json() for i in ids]


def exactly_one_confirmed(views: list[dict[str, Any]], tx: str) -> None:
    statuses = sorted(view["delivery"]["status"] for view in views)
    assert statuses == ["confirmed", "mismatch"], views
    [winner] = [v for v in views if v["delivery"]["status"] == "confirmed"]
    [loser] = [v for v in views if v["delivery"]["status"] == "mismatch"]
    assert winner["delivery"]["deliveredAmount"] == "99"
    assert loser["delivery"]["deliveredAmount"] == "0"
    assert f"already proves session {winner['id']}" in loser["delivery"]["detail"]
    assert tx in loser["delivery"]["detail"]
    assert [v["transactionHash"] for v in views] == [tx, tx]  # stored lower-case


@pytest.mark.parametrize("case", ["same", "mixed"])
async def test_two_sessions_naming_one_transfer_by_webhook_confirm_once(
    app_client: AsyncTestClient[Litestar],
    anvil: Anvil,
    musd: str,
    chain_env: dict[str, str],
    database: Database,
    case: str,
) -> None:
    caller = Caller(app_client, str(Account.create().address))
    first, second = await two_sessions(caller)
    tx = send(anvil, musd, caller.wallet, 99 * MUSD_UNIT)
    for session, named in ((first, tx), (second, upper_case(tx) if case == "mixed" else tx)):
        event = onramp_event(
            session["stripeSessionId"],
            "fulfillment_complete",
            transaction_id=named,
            destination_amount="99",
        )
        assert await post_event(app_client, event) == "applied"
    await run_rounds(database, chain_settings(chain_env))
    exactly_one_confirmed(await deliveries(caller, first["id"], second["id"]), tx)
    # Checked again, the loser stays refused and the winner keeps its transfer.
    await run_rounds(database, chain_settings(chain_env))
    exactly_one_confirmed(await deliveries(caller, first["id"], second["id"]), tx)


async def test_two_sessions_naming_one_transfer_by_replay_and_sync_confirm_once(
    app_client: AsyncTestClient[Litestar],
    stripe: RunningStripe,
    anvil: Anvil,
    musd: str,
    chain_env: dict[str, str],
    database: Database,
    database_url: str,
    tmp_path: Path,
) -> None:
    caller = Caller(app_client, str(Account.create().address))
    first, second = await two_sessions(caller)
    tx = send(anvil, musd, caller.wallet, 99 * MUSD_UNIT)
    # Stripe fulfils both with one transfer; the webhooks are lost.
    for session, named in ((first, upper_case(tx)), (second, tx)):
        stripe.advance(
            session["stripeSessionId"],
            "fulfillment_complete",
            transactionId=named,
            destinationAmount="99",
        )
    replayed = run_onramp(
        "sessions",
        "replay",
        "--id",
        first["id"],
        "--json",
        cwd=tmp_path,
        DATABASE_URL=database_url,
        STRIPE_SECRET_KEY=stripe.secret_key,
        STRIPE_API_BASE=stripe.url,
        **chain_env,
    )
    assert replayed.returncode == 0, replayed.stderr
    synced = await app_client.post(
        f"/api/v1/admin/sessions/{second['id']}/sync", headers={"X-API-Key": ADMIN_KEY}
    )
    assert synced.status_code == 200, synced.text
    assert synced.json()["transactionHash"] == tx
    await run_rounds(database, chain_settings(chain_env))
    exactly_one_confirmed(await deliveries(caller, first["id"], second["id"]), tx)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_workers_racing_for_one_transfer_credit_it_once(
    anvil: Anvil, musd: str, chain_env: dict[str, str], database_url: str
) -> None:
    """Each pair's sessions are decided at the same moment by two workers with their own
    connection pools: the ledger's key lets exactly one of them have the transfer."""
    settings = chain_settings(chain_env)
    databases = [Database(DatabaseSettings(DATABASE_URL=database_url)) for _ in range(2)]
    chains = [Chains(settings), Chains(settings)]
    workers = [DeliveryWorker(d, c, settings) for d, c in zip(databases, chains, strict=True)]
    pairs = []
    for _ in range(12):
        wallet = str(Account.create().address)
        tx = send(anvil, musd, wallet, 99 * MUSD_UNIT)
        pairs.append(
            (
                await fulfilled_session(databases[0], "99", tx, wallet),
                await fulfilled_session(databases[0], "99", tx, wallet),
            )
        )
    try:
        await asyncio.gather(
            *(w.check(s.id) for a, b in pairs for w, s in zip(workers, (a, b), strict=True))
        )
        for a, b in pairs:
            statuses = sorted(
                [
                    (await session_row(databases[0], a.id)).delivery_status,
                    (await session_row(databases[0], b.id)).delivery_status,
                ]
            )
            assert statuses == ["confirmed", "mismatch"]
            assert (
                len(await credits_of(databases[0], a.id) + await credits_of(databases[0], b.id))
                == 1
            )
    finally:
        for chain in chains:
            await chain.close()
        for db in databases:
            await db.dispose()


async def test_the_search_never_takes_a_transfer_the_wallet_sent_itself(
    anvil: Anvil, musd: str, chain_env: dict[str, str], database: Database
) -> None:
    wallet = str(Account.create().address)
    send(anvil, musd, wallet, 7 * MUSD_UNIT)  # its money, not this purchase's amount
    session = await fulfilled_session(database, "5", None, wallet)
    send_from(anvil, musd, wallet, wallet, 5 * MUSD_UNIT)
    await run_rounds(database, chain_settings(chain_env))
    waiting = await session_row(database, session.id)
    assert (waiting.delivery_status, waiting.transaction_hash) == ("pending", None)

    delivered = send(anvil, musd, wallet, 5 * MUSD_UNIT)
    await run_rounds(database, chain_settings(chain_env))
    assert (await session_row(database, session.id)).delivery_status == "confirmed"
    assert (await check_row(database, session.id)).found_transaction_hash == delivered


async def test_the_search_skips_credited_transfers_and_applies_the_tolerance(
    anvil: Anvil, musd: str, chain_env: dict[str, str], database: Database
) -> None:
    wallet = str(Account.create().address)
    named = send(anvil, musd, wallet, 10 * MUSD_UNIT)
    holder = await fulfilled_session(database, "10", named, wallet)
    searching = await fulfilled_session(database, "10", None, wallet)
    await run_rounds(database, chain_settings(chain_env))
    assert (await session_row(database, holder.id)).delivery_status == "confirmed"
    assert (await session_row(database, searching.id)).delivery_status == "pending"

    close = send(anvil, musd, wallet, 9_995 * MUSD_UNIT // 1000)  # 9.995 for 10
    await run_rounds(database, chain_settings(chain_env))
    assert (await session_row(database, searching.id)).delivery_status == "pending"
    lenient = chain_settings(chain_env, DELIVERY_AMOUNT_TOLERANCE="0.01")
    await run_rounds(database, lenient)
    found = await session_row(database, searching.id)
    assert (found.delivery_status, found.delivered_amount) == ("confirmed", "9.995")
    assert (await check_row(database, searching.id)).found_transaction_hash == close


async def test_stripes_late_transaction_id_replaces_a_found_one(
    app_client: AsyncTestClient[Litestar],
    anvil: Anvil,
    musd: str,
    chain_env: dict[str, str],
    database: Database,
) -> None:
    caller, created = await fulfilled_without_an_id(app_client, "3")
    someone_elses = send(anvil, musd, caller.wallet, 3 * MUSD_UNIT)
    await run_rounds(database, chain_settings(chain_env))
    assert (await check_row(database, created["id"])).found_transaction_hash == someone_elses

    stripes = send(anvil, musd, caller.wallet, 3 * MUSD_UNIT)
    late = onramp_event(
        created["stripeSessionId"],
        "fulfillment_complete",
        transaction_id=stripes,
        destination_amount="3",
    )
    assert await post_event(app_client, late) == "applied"
    [reopened] = await deliveries(caller, created["id"])
    assert (reopened["transactionHash"], reopened["delivery"]["status"]) == (stripes, "pending")
    await run_rounds(database, chain_settings(chain_env))
    [confirmed] = await deliveries(caller, created["id"])
    assert confirmed["delivery"]["status"] == "confirmed"
    assert [c.transaction_hash for c in await credits_of(database, created["id"])] == [stripes]
    assert (await check_row(database, created["id"])).found_transaction_hash is None


async def test_a_session_stripe_paid_with_a_transfer_takes_it_from_one_that_found_it(
    anvil: Anvil, musd: str, chain_env: dict[str, str], database: Database
) -> None:
    wallet = str(Account.create().address)
    finder = await fulfilled_session(database, "4", None, wallet)
    paid = send(anvil, musd, wallet, 4 * MUSD_UNIT)
    await run_rounds(database, chain_settings(chain_env))
    assert (await session_row(database, finder.id)).delivery_status == "confirmed"

    named = await fulfilled_session(database, "4", paid, wallet)
    await run_rounds(database, chain_settings(chain_env))
    assert (await session_row(database, named.id)).delivery_status == "confirmed"
    [credit] = await credits_of(database, named.id)
    assert (credit.transaction_hash, credit.found_by_search) == (paid, False)
    searching = await session_row(database, finder.id)
    assert searching.delivery_status == "pending"
    assert f"pays session {named.id}" in (searching.delivery_detail or "")
    assert await credits_of(database, finder.id) == []

    its_own = send(anvil, musd, wallet, 4 * MUSD_UNIT)
    await run_rounds(database, chain_settings(chain_env))
    assert (await session_row(database, finder.id)).delivery_status == "confirmed"
    assert (await check_row(database, finder.id)).found_transaction_hash == its_own
    assert (await session_row(database, named.id)).delivery_status == "confirmed"


async def test_a_late_transaction_id_starts_the_check_again_and_confirms(
    app_client: AsyncTestClient[Litestar],
    anvil: Anvil,
    musd: str,
    chain_env: dict[str, str],
    database: Database,
) -> None:
    caller, created = await fulfilled_without_an_id(app_client, "12")
    impatient = chain_settings(chain_env, DELIVERY_TIMEOUT_SECONDS="1")
    await asyncio.sleep(1.1)
    await run_rounds(database, impatient)
    [failed] = await deliveries(caller, created["id"])
    assert failed["delivery"]["status"] == "failed"
    assert (await check_row(database, created["id"])).finished_at is not None

    tx = send(anvil, musd, caller.wallet, 12 * MUSD_UNIT)
    late = onramp_event(
        created["stripeSessionId"],
        "fulfillment_complete",
        transaction_id=upper_case(tx),
        destination_amount="12",
    )
    assert await post_event(app_client, late) == "applied"
    reopened = await check_row(database, created["id"])
    assert reopened.finished_at is None
    await run_rounds(database, impatient)
    [confirmed] = await deliveries(caller, created["id"])
    assert confirmed["delivery"]["status"] == "confirmed"
    assert confirmed["transactionHash"] == tx
