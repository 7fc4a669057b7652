"""What every response of the real app carries: problem details, request ids, headers."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from litestar import Litestar, Response, get, post
from litestar.params import JSONBody
from litestar.testing import AsyncTestClient
from pydantic import BaseModel

from service.app import create_app
from service.settings import Settings

Client = Callable[..., AsyncTestClient[Litestar]]


class Echo(BaseModel):
    amount: int


@post("/test/echo", request_max_body_size=1024)
async def echo(data: JSONBody[Echo]) -> dict[str, int]:
    return {"amount": data.amount}


@post("/test/boom")
async def boom() -> None:
    raise RuntimeError("database password hunter2 and key sk_test_abcdef leaked?")


@get("/test/framed")
async def framed() -> Response[str]:
    return Response(
        "framed", headers={"X-Frame-Options": "SAMEORIGIN", "X-Request-ID": "chosen-here"}
    )


def app_with_test_routes(settings: Settings) -> Litestar:
    app = create_app(settings)
    app.register(echo)
    app.register(boom)
    app.register(framed)
    return app


def assert_problem(response: object, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["status"] == status
    assert body["code"] == code
    assert {"type", "title", "detail"} <= body.keys()
    return body


async def test_unknown_route_is_a_404_problem(make_client: Client) -> None:
    async with make_client() as client:
        assert_problem(await client.get("/nowhere"), 404, "not_found")


async def test_wrong_method_is_a_405_problem(make_client: Client) -> None:
    async with make_client() as client:
        response = await client.delete("/health")
        assert_problem(response, 405, "method_not_allowed")
        assert "GET" in response.headers["allow"]


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/api/v1/onramp/sessions", "GET, OPTIONS, POST"),
        ("/api/v1/auth/nonce", "OPTIONS, POST"),
        ("/health", "GET, OPTIONS"),
    ],
)
async def test_options_names_every_method_of_its_path(
    make_client: Client, path: str, allowed: str
) -> None:
    async with make_client() as client:
        response = await client.options(path)
    assert (response.status_code, response.headers["allow"]) == (204, allowed)


async def test_invalid_body_is_a_400_problem_with_field_errors(
    make_settings: Callable[..., Settings],
) -> None:
    async with AsyncTestClient(app=app_with_test_routes(make_settings())) as client:
        body = assert_problem(
            await client.post("/test/echo", json={"amount": "lots"}), 400, "invalid_request"
        )
        assert body["errors"] == [{"field": "amount", "message": body["errors"][0]["message"]}]  # type: ignore[index]
        assert_problem(
            await client.post(
                "/test/echo", content=b"{not json", headers={"content-type": "application/json"}
            ),
            400,
            "invalid_request",
        )


async def test_oversized_body_is_a_413_problem(make_settings: Callable[..., Settings]) -> None:
    async with AsyncTestClient(app=app_with_test_routes(make_settings())) as client:
        payload = json.dumps({"amount": 1, "pad": "x" * 2000})
        response = await client.post(
            "/test/echo", content=payload, headers={"content-type": "application/json"}
        )
        assert_problem(response, 413, "payload_too_large")


async def test_unexpected_error_is_a_bare_500_and_is_logged_with_the_request_id(
    make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    async with AsyncTestClient(app=app_with_test_routes(make_settings())) as client:
        response = await client.post("/test/boom", headers={"X-Request-ID": "trace-500"})
    body = assert_problem(response, 500, "internal_error")
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text
    assert body["detail"]
    assert response.headers["x-request-id"] == "trace-500"
    records = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    [error] = [r for r in records if r["event"] == "unhandled_exception"]
    assert error["request_id"] == "trace-500"
    assert "RuntimeError" in error["exception"]
    assert "sk_test_abcdef" not in json.dumps(records)


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [("abc-123_X.y", True), ("x" * 128, True), ("x" * 129, False), ("bad id!", False), ("", False)],
)
async def test_request_id_is_echoed_only_when_safe(
    make_client: Client, sent: str, echoed: bool
) -> None:
    async with make_client() as client:
        response = await client.get("/health", headers={"X-Request-ID": sent})
    request_id = response.headers["x-request-id"]
    assert (request_id == sent) is echoed
    assert 1 <= len(request_id) <= 128


async def test_every_request_gets_one_access_line(
    make_client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    async with make_client() as client:
        capsys.readouterr()
        await client.get("/health", headers={"X-Request-ID": "access-1"})
        await client.get("/missing", headers={"X-Request-ID": "access-2"})
    records = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    access = [r for r in records if r["event"] == "request"]
    assert [(r["request_id"], r["method"], r["path"], r["status"]) for r in access] == [
        ("access-1", "GET", "/health", 200),
        ("access-2", "GET", "/missing", 404),
    ]
    assert all(isinstance(r["duration_ms"], float) for r in access)


async def test_bearer_tokens_in_requests_never_reach_the_log(
    make_client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
    async with make_client() as client:
        await client.get("/nowhere", headers={"Authorization": f"Bearer {token}"})
    assert token not in capsys.readouterr().err


@pytest.mark.parametrize("path", ["/health", "/nowhere", "/schema/openapi.json"])
async def test_security_headers_are_on_every_response(make_client: Client, path: str) -> None:
    async with make_client() as client:
        response = await client.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "strict-transport-security" not in response.headers


async def test_a_response_that_sets_a_security_header_keeps_its_own_once(
    make_settings: Callable[..., Settings],
) -> None:
    async with AsyncTestClient(app=app_with_test_routes(make_settings())) as client:
        response = await client.get("/test/framed")
    assert response.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
    assert response.headers.get_list("x-request-id") == ["chosen-here"]
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_cors_allows_only_the_configured_origins(make_client: Client) -> None:
    async with make_client(ALLOWED_ORIGINS="https://app.example") as client:
        allowed = await client.options(
            "/health",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
        )
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        simple = await client.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in simple.headers
        ok = await client.get("/health", headers={"Origin": "https://app.example"})
        assert ok.headers["access-control-allow-origin"] == "https://app.example"
        assert "x-request-id" in ok.headers["access-control-expose-headers"].lower()


async def test_without_allowed_origins_no_cors_headers_are_sent(make_client: Client) -> None:
    async with make_client() as client:
        response = await client.get("/health", headers={"Origin": "https://app.example"})
    assert "access-control-allow-origin" not in response.headers


async def test_openapi_document_describes_the_service(make_client: Client) -> None:
    async with make_client() as client:
        response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["info"]["title"] == "onramp"
    assert {"/health", "/ready"} <= document["paths"].keys()
