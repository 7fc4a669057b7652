"""The answers a real purchase gets match the served OpenAPI document, body for body.

Generated input rarely gets past sign-in and validation, so the schemathesis run
(test_openapi_fuzz.py) sees mostly refusals; this walks the successful path once: a
sign-in with a real key, a session at the Stripe stand-in, its replay, reads, the
operators' views and a signed webhook, each checked against the document.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.security.conftest import OPERATOR
from tests.support.webhooks import encode, onramp_event, sign


@pytest.fixture(scope="module")
def document(served: str) -> OpenApiSchema:
    return schemathesis.openapi.from_url(f"{served}/schema/openapi.json")


@pytest.fixture
def http(served: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served, timeout=30) as client:
        yield client


def assert_documented(document: OpenApiSchema, response: httpx.Response) -> httpx.Response:
    """The operation lists the status and the content type, and the body matches."""
    method, path = response.request.method, response.request.url.path
    operation = document.find_operation_by_path(method, path)
    assert operation is not None, f"{method} {path} is not documented"
    answers = operation.definition.raw["responses"]
    status = str(response.status_code)
    assert status in answers, f"{operation.label} answered an undocumented {status}"
    media_type = response.headers["content-type"].split(";")[0]
    assert media_type in answers[status]["content"], f"{operation.label}: {media_type}"
    operation.validate_response(response)
    return response


def sign_in(http: httpx.Client, document: OpenApiSchema, account: LocalAccount) -> str:
    issued = assert_documented(
        document, http.post("/api/v1/auth/nonce", json={"walletAddress": account.address})
    ).json()
    signature = account.sign_message(encode_defunct(text=issued["message"])).signature
    verified = assert_documented(
        document,
        http.post(
            "/api/v1/auth/verify",
            json={"message": issued["message"], "signature": "0x" + bytes(signature).hex()},
        ),
    )
    assert verified.status_code == 200, verified.text
    token: str = verified.json()["token"]
    return token


def test_a_whole_purchase_is_answered_as_documented(
    http: httpx.Client, document: OpenApiSchema
) -> None:
    account: LocalAccount = Account.create()
    wallet = {"Authorization": f"Bearer {sign_in(http, document, account)}"}
    assert_documented(document, http.get("/api/v1/auth/me", headers=wallet))

    body = {"walletAddress": account.address, "sourceAmount": "100.00"}
    key = {**wallet, "Idempotency-Key": secrets.token_hex(8)}
    created = assert_documented(
        document, http.post("/api/v1/onramp/sessions", json=body, headers=key)
    )
    assert created.status_code == 201, created.text
    replayed = assert_documented(
        document, http.post("/api/v1/onramp/sessions", json=body, headers=key)
    )
    assert replayed.headers["idempotent-replayed"] == "true"
    reused = assert_documented(
        document,
        http.post("/api/v1/onramp/sessions", json={**body, "sourceAmount": "5.00"}, headers=key),
    )
    assert reused.json()["code"] == "idempotency_key_reused"

    session = created.json()
    assert_documented(
        document, http.get(f"/api/v1/onramp/sessions/{session['id']}", headers=wallet)
    )
    assert_documented(document, http.get("/api/v1/onramp/sessions", headers=wallet))
    assert_documented(document, http.get("/api/v1/admin/sessions", headers=OPERATOR))

    event = encode(onramp_event(session["stripeSessionId"], "requires_payment"))
    delivered = assert_documented(
        document,
        http.post(
            "/api/v1/webhooks/stripe", content=event, headers={"Stripe-Signature": sign(event)}
        ),
    )
    assert delivered.json()["outcome"] == "applied"
    synced = assert_documented(
        document, http.post(f"/api/v1/admin/sessions/{session['id']}/sync", headers=OPERATOR)
    )
    assert synced.status_code == 200, synced.text
