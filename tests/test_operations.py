"""Liveness, readiness and metrics as an orchestrator and Prometheus see them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from litestar import Litestar, get
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from litestar.plugins.prometheus import PrometheusConfig
from litestar.testing import AsyncTestClient
from prometheus_client import generate_latest

from service.app import create_app
from service.chain.rpc import ChainUnavailable
from service.middleware import RequestContextMiddleware, RequestMetrics
from service.operations.fingerprints import CHECK_IN_WITHIN_SECONDS
from service.operations.provider import OperationsServices
from service.settings import ConfigurationError, Settings
from tests.support.anvil import Anvil, free_port
from tests.support.environment import STAGING_ENV
from tests.support.metrics import Samples, samples, value

Client = Callable[..., AsyncTestClient[Litestar]]
OPS_KEY = "ops-key-for-operations-0123456789abcdef"


async def readiness(client: AsyncTestClient[Litestar]) -> tuple[int, dict[str, Any]]:
    """The public /ready, which says ready or not and nothing more, and the operators'
    detail; both agree on the status code."""
    public = await client.get("/ready")
    detail = await client.get("/api/v1/admin/ready", headers={"X-API-Key": OPS_KEY})
    assert public.status_code == detail.status_code, detail.text
    assert public.json() == {"status": detail.json()["status"]}
    body: dict[str, Any] = detail.json()
    return detail.status_code, body


async def test_health_answers_without_dependencies(make_client: Client) -> None:
    # Requests wait up to the pool's timeout for a connection; the start-up does not.
    started = time.monotonic()
    async with make_client(
        DATABASE_URL="postgresql://postgres@127.0.0.1:1/none", DATABASE_POOL_TIMEOUT_SECONDS="60"
    ) as client:
        response = await client.get("/health")
        answered_after = time.monotonic() - started
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert answered_after < CHECK_IN_WITHIN_SECONDS + 10, answered_after


async def test_ready_on_a_migrated_database(database_url: str, make_client: Client) -> None:
    async with make_client(DATABASE_URL=database_url, ADMIN_API_KEYS=OPS_KEY) as client:
        public = await client.get("/ready")
        status, body = await readiness(client)
    assert (public.status_code, public.json()) == (200, {"status": "ready"})
    assert (status, body["status"]) == (200, "ready")
    assert body["checks"]["database"] == {"status": "ok"}
    assert body["checks"]["schema"]["status"] == "ok"
    assert body["checks"]["schema"]["revision"] == body["checks"]["schema"]["head"]


async def test_ready_is_503_with_detail_for_operators_when_the_database_is_unreachable(
    make_client: Client,
) -> None:
    async with make_client(
        DATABASE_URL="postgresql://postgres:s3cretpw@127.0.0.1:1/none", ADMIN_API_KEYS=OPS_KEY
    ) as client:
        public = await client.get("/ready")
        status, body = await readiness(client)
    assert (public.status_code, public.json()) == (503, {"status": "unavailable"})
    assert (status, body["status"]) == (503, "unavailable")
    assert body["checks"]["database"]["status"] == "unavailable"
    assert body["checks"]["database"]["detail"]
    assert "s3cretpw" not in str(body)


async def test_ready_is_503_while_the_schema_is_not_migrated(
    tmp_path: object, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(DATABASE_URL=f"sqlite:///{tmp_path}/empty.db", ADMIN_API_KEYS=OPS_KEY)
    async with AsyncTestClient(app=create_app(settings)) as client:
        status, body = await readiness(client)
    assert status == 503
    assert body["checks"]["schema"]["status"] == "behind"


async def test_readiness_detail_is_for_operators_only(make_client: Client) -> None:
    async with make_client(ADMIN_API_KEYS=OPS_KEY) as client:
        anonymous = await client.get("/api/v1/admin/ready")
        wrong = await client.get("/api/v1/admin/ready", headers={"X-API-Key": "not-the-key"})
        document = (await client.get("/schema/openapi.json")).json()
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthorized")
    assert wrong.status_code == 403
    public = document["paths"]["/ready"]["get"]["responses"]
    for answer in ("200", "503"):
        schema = public[answer]["content"]["application/json"]["schema"]
        assert set(
            document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]["properties"]
        ) == {"status"}
    assert document["paths"]["/api/v1/admin/ready"]["get"]["security"] == [{"ApiKey": []}]


async def test_metrics_count_requests_and_latency_by_route(make_client: Client) -> None:
    read_path = "/api/v1/onramp/sessions/{session_id}"
    health = {"app_name": "onramp", "method": "GET", "path": "/health", "status_code": "200"}
    refused = {**health, "path": read_path, "status_code": "401"}
    async with make_client() as client:
        before = samples((await client.get("/metrics")).text)
        for _ in range(3):
            await client.get("/health")
        await client.get("/api/v1/onramp/sessions/ors_not_signed_in")
        await client.get("/no/such/page")
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = samples(response.text)

    def grew(name: str, labels: dict[str, str]) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("onramp_requests_total", health) == 3
    assert grew("onramp_request_duration_seconds_count", health) == 3
    assert 0 < grew("onramp_request_duration_seconds_sum", health) < 3
    # A route is counted by its template, whatever its parameters; what no route
    # answers, and the scrapes themselves, are not counted.
    assert grew("onramp_requests_total", refused) == 1
    paths = {dict(labels).get("path") for _, labels in after}
    assert not {"/api/v1/onramp/sessions/ors_not_signed_in", "/no/such/page", "/metrics"} & paths
    in_progress = {"app_name": "onramp", "method": "GET", "path": "/health", "status_code": "200"}
    assert value(after, "onramp_requests_in_progress", **in_progress) == 0
    assert 'onramp_request_duration_seconds_bucket{app_name="onramp",le="0.005"' in response.text


def test_every_route_of_the_service_counts_its_requests_in_progress(
    make_settings: Callable[..., Settings],
) -> None:
    """The gauge rises in the app's `before_request`: a route, router or controller with
    a hook of its own would replace it, and its requests would never be in progress."""
    app = create_app(make_settings())
    handlers = [
        handler
        for route in app.routes
        for handler in getattr(route, "route_handlers", ())
        if isinstance(handler, HTTPRouteHandler)
    ]
    hooks = {handler.resolve_before_request() for handler in handlers}
    assert len(handlers) > 20
    assert len(hooks) == 1
    (hook,) = hooks
    assert getattr(hook, "__func__", None) is RequestMetrics.started


async def test_a_request_is_in_progress_on_its_route_until_it_is_answered() -> None:
    """Through the outer wrapper and the hook the service's app is built with: the
    gauge rises while a handler runs and falls when it has answered, error or not."""
    entered, release = asyncio.Event(), asyncio.Event()

    @get("/metrics-test/slow/{n:int}")
    async def slow(n: FromPath[int]) -> dict[str, int]:
        entered.set()
        await release.wait()
        if n < 0:
            raise RuntimeError("failed on purpose")
        return {"n": n}

    metrics = RequestMetrics(PrometheusConfig(app_name="onramp", prefix="onramp", group_path=True))
    app = Litestar([slow], before_request=metrics.started)
    app.asgi_handler = RequestContextMiddleware(app.asgi_handler, metrics=metrics)
    labels = {
        "app_name": "onramp",
        "method": "GET",
        "path": "/metrics-test/slow/{n}",
        "status_code": "200",
    }

    def now() -> Samples:
        return samples(generate_latest().decode())

    errors = {**labels, "status_code": "500"}
    # The registry is the process's: what this test adds, not what is there.
    errors_before = value(now(), "onramp_requests_error_total", **errors)
    base = value(now(), "onramp_requests_in_progress", **labels)
    # In this event loop, as the handler's events are.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
        base_url="http://onramp",
    ) as client:
        for n, status in ((1, 200), (-1, 500)):
            entered.clear()
            release.clear()
            answer = asyncio.ensure_future(client.get(f"/metrics-test/slow/{n}"))
            await asyncio.wait_for(entered.wait(), 5)
            during = value(now(), "onramp_requests_in_progress", **labels) - base
            release.set()
            assert (await answer).status_code == status
            after = value(now(), "onramp_requests_in_progress", **labels) - base
            assert (during, after) == (1, 0)
    assert value(now(), "onramp_requests_error_total", **errors) - errors_before == 1


async def test_a_request_that_ends_without_an_answer_is_not_counted() -> None:
    """Cut off before any response (its client gone, a shutdown): the access line says
    500, but no request is counted, and no error."""
    metrics = RequestMetrics(PrometheusConfig(app_name="onramp", prefix="onramp", group_path=True))

    async def unanswered(scope: Any, receive: Any, send: Any) -> None:
        scope["path_template"] = "/metrics-test/unanswered"

    wrapper = RequestContextMiddleware(unanswered, metrics=metrics)
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.disconnect"}

    scope = {"type": "http", "method": "GET", "path": "/metrics-test/unanswered", "headers": []}
    await wrapper(scope, receive, send)  # type: ignore[arg-type]
    counted = samples(generate_latest().decode())
    assert sent == []
    assert not [labels for _, labels in counted if ("path", "/metrics-test/unanswered") in labels]


@pytest.mark.parametrize("environment", ["staging", "production"])
async def test_a_deployed_api_serves_metrics_on_its_own_port_only(
    make_settings: Callable[..., Settings], environment: str
) -> None:
    port = free_port()
    keys = {"STRIPE_SECRET_KEY": "sk_live_onramp"} if environment == "production" else {}
    settings = make_settings(
        **{**STAGING_ENV, "ENVIRONMENT": environment, **keys, "METRICS_PORT": str(port)}
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        await client.get("/health")
        on_the_api = await client.get("/metrics")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as listener:
            scraped = await listener.get("/metrics")
            alive = await listener.get("/health")
    assert on_the_api.status_code == 404
    assert scraped.status_code == 200
    assert 'onramp_requests_total{app_name="onramp",method="GET",path="/health"' in scraped.text
    assert alive.json() == {"status": "ok"}


async def test_metrics_port_must_be_a_port_of_its_own(
    settings_from_env: Callable[..., Settings],
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        settings_from_env(PORT="9100", METRICS_PORT="9100")
    assert refused.value.problems == ["METRICS_PORT: must differ from PORT (its own listener)"]


async def test_ready_reports_the_chain_as_last_seen_without_requiring_it(
    make_settings: Callable[..., Settings], anvil: Anvil
) -> None:
    settings = make_settings(
        MEZO_RPC_URLS=f"{anvil.url},http://127.0.0.1:9/secret-key-path", ADMIN_API_KEYS=OPS_KEY
    )
    app = create_app(settings)
    async with AsyncTestClient(app=app) as client:
        _, before = await readiness(client)
        assert before["checks"]["rpc"]["status"] == "unknown"
        assert (
            await OperationsServices.of(app.state).chains.mezo.call(lambda w3: w3.eth.chain_id)
            == anvil.chain_id
        )
        status, after = await readiness(client)
    assert status == 200
    rpc = after["checks"]["rpc"]
    assert rpc["status"] == "ok"
    assert [node["status"] for node in rpc["nodes"]] == ["ok", "unknown"]
    assert "secret-key-path" not in str(after)


async def test_ready_stays_200_while_no_rpc_node_answers(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(ADMIN_API_KEYS=OPS_KEY))  # the RPC URL is a closed port
    async with AsyncTestClient(app=app) as client:
        with pytest.raises(ChainUnavailable):
            await OperationsServices.of(app.state).chains.mezo.call(lambda w3: w3.eth.chain_id)
        status, body = await readiness(client)
    assert status == 200
    assert body["checks"]["rpc"]["status"] == "unavailable"


# A request waits this long for a connection before it answers 503 (10 s by default).
UNREACHABLE_DATABASE = {
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none",
    "DATABASE_POOL_TIMEOUT_SECONDS": "1",
}


async def test_a_database_outage_is_a_503_problem(make_client: Client) -> None:
    async with make_client(**UNREACHABLE_DATABASE) as client:
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

    async with make_client(**UNREACHABLE_DATABASE) as client:
        before = outages((await client.get("/metrics")).text)
        for _ in range(2):
            refused = await client.post(
                "/api/v1/auth/nonce",
                json={"walletAddress": "0x52908400098527886E0F7030069857D2E4169EE7"},
            )
            assert refused.json()["code"] == "database_unavailable"
        after = outages((await client.get("/metrics")).text)
    assert after - before == 2
