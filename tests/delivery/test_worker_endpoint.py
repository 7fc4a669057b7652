"""`onramp worker` with WORKER_METRICS_PORT: `/health` while its loop goes round, and
`/metrics` with the verdicts it reached, as a platform and Prometheus see them; and the
same listener of the API's, on METRICS_PORT (tests/test_operations.py serves it)."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from litestar.testing import AsyncTestClient

from service.chain.rpc import Chains
from service.database import Database
from service.delivery.worker import DeliveryWorker
from service.operations.metrics_endpoint import probe_app
from service.settings import ConfigurationError, Settings
from tests.delivery.conftest import fulfilled_session, send
from tests.delivery.test_worker import UNIT, chain_settings
from tests.support.anvil import Anvil, free_port
from tests.support.metrics import samples, value
from tests.support.processes import OnrampProcess, run_onramp


async def test_the_worker_serves_health_and_its_verdicts(
    anvil: Anvil, database: Database, database_url: str, tmp_path: Path
) -> None:
    musd = anvil.deploy_token(10 * UNIT)
    wallet = str(Account.create().address)
    await fulfilled_session(database, "2", send(anvil, musd, wallet, 2 * UNIT), wallet)
    worker = OnrampProcess(
        tmp_path,
        "worker",
        DATABASE_URL=database_url,
        MEZO_RPC_URLS=anvil.url,
        MUSD_TOKEN_ADDRESS=musd,
        LOG_FORMAT="json",
    )
    worker.env["WORKER_METRICS_PORT"] = str(worker.port)  # where the harness probes /health
    worker.start()
    try:
        async with httpx.AsyncClient(base_url=worker.url) as http:
            assert (await http.get("/health")).json() == {"status": "ok"}
            deadline = time.monotonic() + 30
            while True:
                scraped = samples((await http.get("/metrics")).text)
                confirmed = value(scraped, "onramp_delivery_verdicts_total", verdict="confirmed")
                if confirmed or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
    finally:
        returncode = worker.stop()
    assert returncode == 0, worker.output()
    assert confirmed == 1
    assert value(scraped, "onramp_delivery_verdicts_total", verdict="failed") == 0
    # The check started when the session was fulfilled, 30 s before the test began.
    assert value(scraped, "onramp_delivery_confirmation_seconds_count") == 1
    assert value(scraped, "onramp_delivery_confirmation_seconds_bucket", le="15.0") == 0
    assert value(scraped, "onramp_delivery_confirmation_seconds_bucket", le="120.0") == 1
    beat = value(scraped, "onramp_delivery_worker_heartbeat_timestamp_seconds")
    assert time.time() - 60 < beat <= time.time()
    assert "worker_stopped" in worker.output()


async def test_a_starting_worker_is_alive_until_its_first_round_is_overdue(
    anvil: Anvil, musd: str, database: Database
) -> None:
    """Probed while it checks in, before its loop has begun, a worker is starting, not
    stalled; it is stalled once a whole longest round passes without a first beat."""
    chains = Chains(chain_settings(anvil, musd))
    try:
        worker = DeliveryWorker(database, chains, chain_settings(anvil, musd))
    finally:
        await chains.close()
    assert worker.is_alive()
    worker.last_beat -= worker.longest_round.total_seconds() + 1  # a start-up that hung
    assert not worker.is_alive()
    worker.beat()
    assert worker.is_alive()


async def test_health_is_503_once_the_loop_has_stalled() -> None:
    async with AsyncTestClient(app=probe_app(lambda: False)) as client:
        response = await client.get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "stalled"}


@pytest.mark.parametrize(
    ("command", "variable"), [("worker", "WORKER_METRICS_PORT"), ("serve", "METRICS_PORT")]
)
def test_a_taken_port_is_one_line_and_nothing_runs(
    tmp_path: Path, sqlite_url: str, command: str, variable: str
) -> None:
    port = free_port()
    with socket.create_server(("127.0.0.1", port)):
        result = run_onramp(command, cwd=tmp_path, DATABASE_URL=sqlite_url, **{variable: str(port)})
    assert result.returncode == 1
    assert f"onramp: {variable}: 127.0.0.1:{port} cannot be served" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_port_is_optional_and_checked() -> None:
    assert Settings.from_env({}).server.worker_metrics_port is None
    assert Settings.from_env({"WORKER_METRICS_PORT": " "}).server.worker_metrics_port is None
    assert Settings.from_env({"WORKER_METRICS_PORT": "9187"}).server.worker_metrics_port == 9187
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({"WORKER_METRICS_PORT": "70000"})
    assert refused.value.problems == [
        "WORKER_METRICS_PORT: must be a TCP port number from 1 to 65535 (got '70000')"
    ]
