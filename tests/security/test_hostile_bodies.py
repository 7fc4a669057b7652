"""Oversized and deeply nested bodies on every route that reads one: a clean 4xx problem,
and nothing stored, issued or sent to Stripe.

tests/onramp and tests/webhooks check one oversized body each, with a Content-Length.
Here every body route also gets one streamed without a length (the limit must hold while
reading, not only by the header) and JSON nested a few thousand levels deep, which is a
few kilobytes, under every limit: msgspec gives up on it with a RecursionError,
which used to escape as a 500 (see service/bodies.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.onramp.conftest import new_wallet
from tests.security.conftest import row_counts, signed_in
from tests.support.stripe import RunningStripe
from tests.support.webhooks import sign

KIB = 1024
WALLET = new_wallet()
# Each route that reads a body, with its limit and the credentials it needs to get there.
ROUTES: dict[str, tuple[int, dict[str, str]]] = {
    "/api/v1/auth/nonce": (16 * KIB, {}),
    "/api/v1/auth/verify": (16 * KIB, {}),
    "/api/v1/onramp/sessions": (16 * KIB, signed_in(WALLET)),
    "/api/v1/webhooks/stripe": (1024 * KIB, {}),
}
# Deep enough for any JSON decoder to give up, small enough to pass every size limit.
DEPTH = 2500


def padded(size: int) -> bytes:
    """A JSON object of exactly `size` bytes."""
    head = b'{"walletAddress": "' + WALLET.encode() + b'", "pad": "'
    return head + b"x" * (size - len(head) - 2) + b'"}'


def nested_arrays() -> bytes:
    return b"[" * DEPTH + b"]" * DEPTH


def nested_objects() -> bytes:
    return b'{"a":' * DEPTH + b"1" + b"}" * DEPTH


def in_chunks(body: bytes) -> Iterator[bytes]:
    """Streamed without a Content-Length (chunked transfer encoding)."""
    for start in range(0, len(body), 8 * KIB):
        yield body[start : start + 8 * KIB]


@pytest.fixture
def http(served: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served, timeout=30) as client:
        yield client


@pytest.fixture
def nothing_changes(migrated: dict[str, str], stripe_server: RunningStripe) -> Iterator[None]:
    """No row is added anywhere, and Stripe is not asked for anything."""
    rows, stripe_calls = row_counts(migrated["postgresql"]), stripe_server.stats()
    yield
    assert row_counts(migrated["postgresql"]) == rows
    assert stripe_server.stats() == stripe_calls


def post(http: httpx.Client, path: str, body: bytes | Iterator[bytes]) -> httpx.Response:
    credentials = ROUTES[path][1]
    headers = {**credentials, "content-type": "application/json"}
    if isinstance(body, bytes) and path.endswith("/stripe"):
        headers["Stripe-Signature"] = sign(body)
    return http.post(path, content=body, headers=headers)


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


@pytest.mark.usefixtures("nothing_changes")
@pytest.mark.parametrize("path", list(ROUTES))
def test_a_body_over_the_limit_is_a_413(http: httpx.Client, path: str) -> None:
    limit = ROUTES[path][0]
    assert_problem(post(http, path, padded(limit + 1)), 413, "payload_too_large")
    assert_problem(post(http, path, in_chunks(padded(limit + 1))), 413, "payload_too_large")
    # A byte less is read, and refused for what it says, not for its size.
    assert post(http, path, padded(limit)).status_code != 413


@pytest.mark.usefixtures("nothing_changes")
@pytest.mark.parametrize("path", list(ROUTES))
@pytest.mark.parametrize("body", [nested_arrays(), nested_objects()], ids=["arrays", "objects"])
def test_deeply_nested_json_is_a_400(http: httpx.Client, path: str, body: bytes) -> None:
    code = "invalid_event" if path.endswith("/stripe") else "invalid_request"
    assert_problem(post(http, path, body), 400, code)
