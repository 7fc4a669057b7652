"""Liveness, readiness and metrics as an orchestrator and Prometheus see them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.chain.rpc import ChainUnavailable
from service.operations.provider import OperationsServices
from service.settings import Settings
from tests.support.anvil import Anvil
from tests.support.metrics import samples, value

Client = Callable[..., AsyncTestClient[Litestar]]


async def test_health_answers_without_dependencies(make_client: Client) -> None:
    async with make_client(DATABASE_URL="postgresql://postgres@127.0.0.1:1/none") as client:
        response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_on_a_migrated_database(database_url: str, make_client: Client) -> None:
    async with make_client(DATABASE_URL=database_url) as client:
        response = await client.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == {"status": "ok"}
    assert body["checks"]["schema"]["status"] == "ok"
    assert body["checks"]["schema"]["revision"] == body["checks"]["schema"]["head"]


async def test_ready_is_503_with_detail_when_the_database_is_unreachable(
    make_client: Client,
) -> None:
    async with make_client(
        DATABASE_URL="postgresql://postgres:s3cretpw@127.0.0.1:1/none"
    ) as client:
        response = await client.get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["status"] == "unavailable"
    assert body["checks"]["database"]["detail"]
    assert "s3cretpw" not in response.text


async def test_ready_is_503_while_the_schema_is_not_migrated(
    tmp_path: object, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(DATABASE_URL=f"sqlite:///{tmp_path}/empty.db")
    async with AsyncTestClient(app=create_app(settings)) as client:
        response = await client.get("/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["schema"]["status"] == "behind"


async def test_metrics_count_requests_and_latency_by_route(make_client: Client) -> None:
    async with make_client() as client:
        for _ in range(3):
            await client.get("/health")
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'onramp_requests_total{app_name="onramp",method="GET",path="/health"' in text
    assert (
        'onramp_request_duration_seconds_count{app_name="onramp",method="GET",path="/health"'
        in text
    )
    assert 'onramp_request_duration_seconds_bucket{app_name="onramp",le="0.005"' in text


async def test_ready_reports_the_chain_as_last_seen_without_requiring_it(
    make_settings: Callable[..., Settings], anvil: Anvil
) -> None:
    settings = make_settings(MEZO_RPC_URLS=f"{anvil.url},http://127.0.0.1:9/secret-key-path")
    app = create_app(settings)
    async with AsyncTestClient(app=app) as client:
        before = (await client.get("/ready")).json()["checks"]["rpc"]
        assert before["status"] == "unknown"
        assert (
            await OperationsServices.of(app.state).chains.mezo.call(lambda w3: w3.eth.chain_id)
            == anvil.chain_id
        )
        after = await client.get("/ready")
    assert after.status_code == 200
    rpc = after.json()["checks"]["rpc"]
    assert rpc["status"] == "ok"
    assert [node["status"] for node in rpc["nodes"]] == ["ok", "unknown"]
    assert "secret-key-path" not in after.text


async def test_ready_stays_200_while_no_rpc_node_answers(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings())  # the RPC URL is a closed port
    async with AsyncTestClient(app=app) as client:
        with pytest.raises(ChainUnavailable):
            await OperationsServices.of(app.state).chains.mezo.call(lambda w3: w3.eth.chain_id)
        response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["rpc"]["status"] == "unavailable"


async def test_a_database_outage_is_a_503_problem(make_client: Client) -> None:
    async with make_client(DATABASE_URL="postgresql://postgres@127.0.0.1:1/none") as client:
        response = await client.post(
            "/api/v1/auth/nonce",
            json={"walletAddress": "0x52908400098527886E0F7030069857D2E4169EE7"},
        )
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert response.headers["retry-after"] == "2"


async def test_each_answer_of_a_database_outage_is_counted(make_client: Client) -> None:
    def outages(text: str) -> float:
        return value(samples(text), "onramp_database_unavailable_total", component="api")

    async with make_client(DATABASE_URL="postgresql://postgres@127.0.0.1:1/none") as client:
        before = outages((await client.get("/metrics")).text)
        for _ in range(2):
            refused = await client.post(
                "/api/v1/auth/nonce",
                json={"walletAddress": "0x52908400098527886E0F7030069857D2E4169EE7"},
            )
            assert refused.json()["code"] == "database_unavailable"
        after = outages((await client.get("/metrics")).text)
    assert after - before == 2
