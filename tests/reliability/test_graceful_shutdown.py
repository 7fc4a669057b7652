"""SIGTERM, as a platform sends it on every deploy: requests in flight are answered,
and the delivery worker hands back what it had claimed."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.onramp.conftest import new_wallet, token_for
from tests.support.anvil import Anvil
from tests.support.deliveries import delivered_sessions
from tests.support.processes import OnrampProcess, service_env
from tests.support.rpc_trouble import TroubledNode
from tests.support.stripe import RunningStripe


def test_requests_in_flight_at_sigterm_are_answered(
    tmp_path: Path,
    stripe: RunningStripe,
    migrated: dict[str, str],
    record_figures: Callable[..., None],
) -> None:
    replica = OnrampProcess(tmp_path, "serve", **service_env(migrated["postgresql"], stripe))
    replica.start()
    stripe.faults(latencyMs=1500)  # every creation is still waiting on Stripe at SIGTERM
    in_flight = 16

    async def create(http: httpx.AsyncClient) -> int:
        wallet = new_wallet()
        response = await http.post(
            f"{replica.url}/api/v1/onramp/sessions",
            json={"walletAddress": wallet, "sourceAmount": "30.00"},
            headers={"Authorization": f"Bearer {token_for(wallet)}"},
            timeout=30,
        )
        return response.status_code

    async def run() -> tuple[list[int], int, float]:
        async with httpx.AsyncClient() as http:
            requests = [asyncio.create_task(create(http)) for _ in range(in_flight)]
            await asyncio.to_thread(wait_for, lambda: stripe.stats()["createRequests"] >= in_flight)
            stopping = time.monotonic()
            returncode = await asyncio.to_thread(replica.stop)
            return await asyncio.gather(*requests), returncode, time.monotonic() - stopping

    try:
        statuses, returncode, seconds = asyncio.run(run())
    finally:
        stripe.faults()
    assert statuses == [201] * in_flight
    assert returncode in (0, -signal.SIGTERM), replica.output()
    assert stripe.simulator.stats.sessions_created == in_flight
    record_figures(requests_in_flight=in_flight, seconds_to_exit=round(seconds, 2))


@pytest.mark.parametrize("command", [["worker"], ["serve"]], ids=["worker", "serve"])
def test_sigterm_hands_back_the_delivery_claims_of_a_round_in_progress(
    tmp_path: Path,
    anvil: Anvil,
    troubled_node: TroubledNode,
    emptied_postgresql: str,
    command: list[str],
    record_figures: Callable[..., None],
) -> None:
    database_url = emptied_postgresql
    token = anvil.deploy_token(10**30)
    ids = delivered_sessions(anvil, token, database_url, 5)
    troubled_node.mode = "hang"  # the round waits on the node until well past SIGTERM
    env = service_env(
        database_url,
        MEZO_RPC_URLS=troubled_node.url,
        MUSD_TOKEN_ADDRESS=token,
        RPC_TIMEOUT_SECONDS="60",
        DELIVERY_WORKER="true",
    )
    process = OnrampProcess(tmp_path, *command, **env)
    process.start(wait=command == ["serve"])
    wait_for(lambda: troubled_node.requests > 0, process.output)
    assert checks_where(database_url, ids, "claimed_until > now()") == len(ids)

    stopping = time.monotonic()
    returncode = process.stop()
    seconds = time.monotonic() - stopping
    assert returncode in (0, -signal.SIGTERM), process.output()
    assert seconds < 10, "the round must be cut short, not waited out"
    assert checks_where(database_url, ids, "claimed_until > now()") == 0
    # Handed-back checks are due at once for the next worker.
    assert checks_where(database_url, ids, "due_at <= now()") == len(ids)
    record_figures(seconds_to_exit=round(seconds, 2))


def checks_where(database_url: str, ids: list[str], condition: str) -> int:
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            "SELECT count(*) FROM delivery_checks"  # noqa: S608 - the tests' own conditions
            f" WHERE onramp_session_id = ANY(%s) AND {condition}",
            (ids,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def wait_for(condition: Callable[[], bool], explain: Callable[[], str] = str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, explain()
        time.sleep(0.02)
