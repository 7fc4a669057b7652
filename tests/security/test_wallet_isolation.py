"""One wallet can neither see nor touch another wallet's sessions, on any session route.

The contract answers another wallet's session with 404, never 403: the answer must not
even reveal that the session exists. tests/onramp/ checks the plain read, the plain list,
creating for another wallet and idempotency keys across wallets; here wallet B also
pages with A's cursor, filters by every status, and compares its 404 with the one for a
session that never existed. The operator routes refuse wallet tokens
(test_operator_routes.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from service.onramp.lifecycle import LIFECYCLE
from tests.onramp.conftest import new_wallet
from tests.security.conftest import signed_in

SESSIONS = "/api/v1/onramp/sessions"
NEVER_EXISTED = "ors_01JZZZZZZZZZZZZZZZZZZZZZZZ"


@dataclass
class Wallet:
    http: httpx.Client
    address: str

    @property
    def headers(self) -> dict[str, str]:
        return signed_in(self.address)

    def create(self) -> dict[str, Any]:
        body = {"walletAddress": self.address, "sourceAmount": "100.00"}
        response = self.http.post(SESSIONS, json=body, headers=self.headers)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def get(self, path: str, **params: str) -> httpx.Response:
        return self.http.get(path, params=params, headers=self.headers)


@pytest.fixture
def http(served: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served, timeout=30) as client:
        yield client


@pytest.fixture
def owner(http: httpx.Client) -> Wallet:
    return Wallet(http, new_wallet())


@pytest.fixture
def stranger(http: httpx.Client) -> Wallet:
    return Wallet(http, new_wallet())


def test_another_wallets_session_is_as_absent_as_one_that_never_existed(
    owner: Wallet, stranger: Wallet
) -> None:
    session = owner.create()
    theirs = stranger.get(f"{SESSIONS}/{session['id']}")
    nobodys = stranger.get(f"{SESSIONS}/{NEVER_EXISTED}")
    assert theirs.status_code == nobodys.status_code == 404
    assert theirs.json() == nobodys.json()
    assert theirs.headers["content-type"] == nobodys.headers["content-type"]
    assert session["clientSecret"] not in theirs.text


def test_no_filter_or_cursor_lists_another_wallets_sessions(
    owner: Wallet, stranger: Wallet
) -> None:
    sessions = [owner.create() for _ in range(3)]
    first_page = owner.get(SESSIONS, limit="1").json()
    assert first_page["nextCursor"] is not None

    seen = [stranger.get(SESSIONS).json()]
    seen += [stranger.get(SESSIONS, status=status).json() for status in LIFECYCLE.statuses]
    seen.append(stranger.get(SESSIONS, cursor=first_page["nextCursor"]).json())
    seen.append(stranger.get(SESSIONS, cursor=first_page["nextCursor"], limit="100").json())
    assert all(page == {"items": [], "nextCursor": None} for page in seen), seen

    # The owner's own view is whole and unchanged.
    assert {s["id"] for s in owner.get(SESSIONS).json()["items"]} == {s["id"] for s in sessions}
