"""Every operator route takes exactly one of ADMIN_API_KEYS in X-API-Key, nothing else.

Contract: no credentials -> 401; a wrong key or a wallet token -> 403. tests/auth and
tests/onramp check a few of these on one route each; here every operator route meets
every near miss, on the running service, and a refused sync moves nothing.
The operator key in turn opens no wallet route.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.onramp.conftest import ADMIN_KEY, new_wallet
from tests.security.conftest import OPERATOR, signed_in
from tests.support.stripe import RunningStripe

WALLET = new_wallet()
NEAR_MISSES: dict[str, tuple[dict[str, str], int]] = {
    "no credentials": ({}, 401),
    "a wrong key": ({"X-API-Key": "ops-key-of-someone-else"}, 403),
    "the key with a character more": ({"X-API-Key": ADMIN_KEY + "x"}, 403),
    "the key with a character less": ({"X-API-Key": ADMIN_KEY[:-1]}, 403),
    "the key in another case": ({"X-API-Key": ADMIN_KEY.upper()}, 403),
    "an empty key": ({"X-API-Key": ""}, 403),
    "a wallet token": (signed_in(WALLET), 403),
    "a wallet token as the key": ({"X-API-Key": signed_in(WALLET)["Authorization"][7:]}, 403),
    "the key as a bearer token": ({"Authorization": f"Bearer {ADMIN_KEY}"}, 403),
}


@pytest.fixture
def http(served: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served, timeout=30) as client:
        yield client


@pytest.fixture
def session_id(http: httpx.Client, stripe_server: RunningStripe) -> str:
    """A session that Stripe has moved on and this service has not heard of yet: only
    a sync would bring it forward."""
    body = {"walletAddress": WALLET, "sourceAmount": "100.00"}
    created = http.post("/api/v1/onramp/sessions", json=body, headers=signed_in(WALLET))
    assert created.status_code == 201, created.text
    stripe_server.advance(created.json()["stripeSessionId"], "requires_payment")
    session_id: str = created.json()["id"]
    return session_id


def local_status(http: httpx.Client, session_id: str) -> str:
    read = http.get(f"/api/v1/onramp/sessions/{session_id}", headers=signed_in(WALLET))
    status: str = read.json()["status"]
    return status


@pytest.mark.parametrize("attempt", list(NEAR_MISSES))
def test_operator_routes_refuse_every_near_miss(
    http: httpx.Client, session_id: str, attempt: str
) -> None:
    headers, status = NEAR_MISSES[attempt]
    code = {401: "unauthorized", 403: "forbidden"}[status]
    for method, path in (
        ("GET", "/api/v1/admin/sessions"),
        ("POST", f"/api/v1/admin/sessions/{session_id}/sync"),
        ("GET", "/api/v1/admin/audit"),
    ):
        response = http.request(method, path, headers=headers)
        assert response.status_code == status, (method, path, response.text)
        assert response.json()["code"] == code
        assert session_id not in response.text
    assert local_status(http, session_id) == "initialized"


def test_the_operator_key_is_accepted_and_opens_no_wallet_route(
    http: httpx.Client, session_id: str
) -> None:
    assert http.get("/api/v1/admin/sessions", headers=OPERATOR).status_code == 200
    synced = http.post(f"/api/v1/admin/sessions/{session_id}/sync", headers=OPERATOR)
    assert synced.status_code == 200, synced.text
    assert local_status(http, session_id) == "requires_payment"
    for path in (
        "/api/v1/auth/me",
        "/api/v1/onramp/sessions",
        f"/api/v1/onramp/sessions/{session_id}",
    ):
        assert http.get(path, headers=OPERATOR).status_code == 401
