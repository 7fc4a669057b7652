"""Delivery from Stripe's word to the chain's: webhook, durable check, worker, API."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from eth_account import Account
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.database import Database
from service.onramp.models import OnrampSession
from service.settings import DatabaseSettings, Settings
from tests.delivery.conftest import send
from tests.delivery.test_worker import UNIT, fulfilled
from tests.onramp.conftest import JWT_SECRET, token_for
from tests.support.anvil import Anvil
from tests.support.orm import orm_session
from tests.support.processes import ONRAMP, bare_env, run_onramp
from tests.support.webhooks import WEBHOOK_SECRET, encode, onramp_event, sign
from tests.webhooks.test_receive import a_session


async def test_a_fulfilled_session_is_confirmed_by_the_in_process_worker(
    make_settings: Callable[..., Settings], anvil: Anvil, database_url: str
) -> None:
    musd = anvil.deploy_token(100 * UNIT)
    settings = make_settings(
        DATABASE_URL=database_url,
        MEZO_RPC_URLS=anvil.url,
        MUSD_TOKEN_ADDRESS=musd,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        JWT_SECRET=JWT_SECRET,
        DELIVERY_WORKER="true",
    )
    app = create_app(settings)
    # The app's engine lives on the test client's event loop; the test keeps its own.
    database = Database(DatabaseSettings(DATABASE_URL=database_url))
    session = await a_session(database)
    await database.dispose()
    async with AsyncTestClient(app=app) as client:
        tx = send(anvil, musd, session.wallet_address, 98_49 * UNIT // 100)
        body = encode(
            onramp_event(
                session.stripe_session_id or "",
                "fulfillment_complete",
                transaction_id=tx,
                destination_amount="98.49",
            )
        )
        delivered = await client.post(
            "/api/v1/webhooks/stripe", content=body, headers={"Stripe-Signature": sign(body)}
        )
        assert delivered.json()["outcome"] == "applied"
        auth = {"Authorization": f"Bearer {token_for(session.wallet_address)}"}
        deadline = time.monotonic() + 20
        while True:
            view = (await client.get(f"/api/v1/onramp/sessions/{session.id}", headers=auth)).json()
            if view["delivery"]["status"] != "pending" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    assert view["delivery"]["status"] == "confirmed"
    assert view["delivery"]["deliveredAmount"] == "98.49"
    assert view["delivery"]["confirmations"] >= 1
    assert view["transactionHash"] == tx


async def test_onramp_worker_confirms_and_stops_on_sigterm(
    anvil: Anvil, database_url: str, tmp_path: Path
) -> None:
    musd = anvil.deploy_token(10 * UNIT)
    database = Database(DatabaseSettings(DATABASE_URL=database_url))
    wallet = str(Account.create().address)
    session = await fulfilled(database, "2", send(anvil, musd, wallet, 2 * UNIT), wallet)
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, then polled
        [ONRAMP, "worker"],
        env=bare_env(DATABASE_URL=database_url, MEZO_RPC_URLS=anvil.url, MUSD_TOKEN_ADDRESS=musd),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        status = "pending"
        while status == "pending" and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            async with orm_session(database) as db:
                current = await db.get(OnrampSession, session.id)
                assert current is not None
                status = current.delivery_status
                db.expunge_all()
        assert status == "confirmed"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        await database.dispose()


async def test_onramp_delivery_recheck_decides_again_and_reports(
    anvil: Anvil, database_url: str, tmp_path: Path
) -> None:
    musd = anvil.deploy_token(10 * UNIT)
    database = Database(DatabaseSettings(DATABASE_URL=database_url))
    wallet = str(Account.create().address)
    session = await fulfilled(database, "3", send(anvil, musd, wallet, 3 * UNIT), wallet)
    await database.dispose()
    env = {"DATABASE_URL": database_url, "MEZO_RPC_URLS": anvil.url, "MUSD_TOKEN_ADDRESS": musd}
    result = run_onramp(
        "delivery", "recheck", "--session", session.id, "--json", cwd=tmp_path, **env
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"session_id": session.id, "status": "confirmed", "detail": "1 confirmation"}
    ]
    table = run_onramp("delivery", "recheck", "--status", "confirmed", cwd=tmp_path, **env)
    assert table.returncode == 0, table.stderr
    assert "Delivery recheck" in table.stdout
    assert "confirmed" in table.stdout
