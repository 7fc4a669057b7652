"""A SIGKILL of `onramp worker` between the claim it committed and the answer to its
send loses nothing: once the lease has passed, the worker started again sends the event
once more, with the same webhook-id (at least once)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.columns import utcnow
from service.settings import Settings
from tests.merchant_webhooks.conftest import register
from tests.merchant_webhooks.test_dispatch import a_stored_session, stripe_moves
from tests.support.environment import BASE_ENV
from tests.support.orm import run_sql
from tests.support.processes import OnrampProcess
from tests.support.receivers import receiving
from tests.support.webhooks import WEBHOOK_SECRET

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
async def app(hooks_settings: Callable[..., Settings]) -> AsyncIterator[AsyncTestClient[Litestar]]:
    settings = hooks_settings(STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET)
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


async def test_a_worker_killed_mid_send_loses_nothing(
    app: AsyncTestClient[Litestar], database_url: str, tmp_path: Path
) -> None:
    _, stripe_id = await a_stored_session(database_url)
    release = threading.Event()
    env = {**BASE_ENV, "DATABASE_URL": database_url}
    with receiving(hold=release) as receiver:
        await register(app, receiver.url)
        # Committed while no worker runs: the outbox holds it.
        await stripe_moves(app, stripe_id, "requires_payment")
        worker = OnrampProcess(tmp_path, "worker", **env)
        worker.start(wait=False)
        try:
            held = await asyncio.to_thread(receiver.holding.wait, 30)
            assert held, worker.output()
        finally:
            worker.kill()
        rows = await run_sql(
            database_url,
            "SELECT outcome, claimed_until IS NOT NULL FROM merchant_webhook_deliveries",
        )
        assert rows == [(None, True)]  # claimed, never recorded
        # The lease passes (the tests do not wait out its 70 s).
        await run_sql(
            database_url,
            "UPDATE merchant_webhook_deliveries SET claimed_until = :t RETURNING id",
            t=utcnow() - timedelta(seconds=1),
        )
        receiver.hold = None
        release.set()
        again = OnrampProcess(tmp_path, "worker", **env)
        again.start(wait=False)
        try:
            requests = await asyncio.to_thread(receiver.wait_for, 2)
            for _ in range(200):
                done = await run_sql(
                    database_url, "SELECT outcome FROM merchant_webhook_deliveries"
                )
                if done == [("delivered",)]:
                    break
                await asyncio.sleep(0.05)
        finally:
            assert again.stop() == 0, again.output()
    assert done == [("delivered",)]
    assert requests[0].headers["webhook-id"] == requests[1].headers["webhook-id"]
    assert requests[0].body == requests[1].body
