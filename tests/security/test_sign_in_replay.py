"""Sign-in messages replayed, re-wrapped, or made for another site or chain.

tests/auth/test_sign_in.py covers each refusal once (a used message, another domain,
URI or chain id, expiry). Here the attacker is smarter: they re-wrap a used nonce in a
fresh message, or get the wallet to sign for a look-alike site or for Mezo mainnet,
and replay that here. Each is refused by the running service, and none costs the
wallet its pending nonce.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from tests.auth.test_sign_in import own_message, signature_of

MEZO_MAINNET_CHAIN_ID = 31612


@pytest.fixture
def http(served: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served, timeout=30) as client:
        yield client


@pytest.fixture
def account() -> LocalAccount:
    created: LocalAccount = Account.create()
    return created


def nonce_for(http: httpx.Client, account: LocalAccount) -> str:
    response = http.post("/api/v1/auth/nonce", json={"walletAddress": account.address})
    assert response.status_code == 200, response.text
    nonce: str = response.json()["nonce"]
    return nonce


def verify(http: httpx.Client, account: LocalAccount, message: str) -> httpx.Response:
    return http.post(
        "/api/v1/auth/verify",
        json={"message": message, "signature": signature_of(account, message)},
    )


def assert_refused(response: httpx.Response, code: str) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["code"] == code
    assert "token" not in response.json()


def test_a_used_nonce_is_refused_in_any_message(http: httpx.Client, account: LocalAccount) -> None:
    nonce = nonce_for(http, account)
    first = own_message(account.address, nonce)
    assert verify(http, account, first).status_code == 200
    assert_refused(verify(http, account, first), "nonce_used")
    rewrapped = own_message(account.address, nonce, statement="Sign in again")
    assert rewrapped != first
    assert_refused(verify(http, account, rewrapped), "nonce_used")


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"domain": "localhost.evil.example:8000"}, "domain_mismatch"),
        ({"domain": "evil.example", "uri": "https://evil.example"}, "domain_mismatch"),
        ({"uri": "http://localhost:8000@evil.example"}, "uri_mismatch"),
        ({"uri": "https://localhost:8000"}, "uri_mismatch"),
        ({"chain_id": MEZO_MAINNET_CHAIN_ID}, "chain_id_mismatch"),
        ({"chain_id": 1, "domain": "evil.example"}, "domain_mismatch"),
    ],
)
def test_messages_signed_for_another_site_or_chain_are_refused(
    http: httpx.Client, account: LocalAccount, changes: dict[str, Any], code: str
) -> None:
    nonce = nonce_for(http, account)
    assert_refused(verify(http, account, own_message(account.address, nonce, **changes)), code)
    # The refusal did not spend the nonce: the wallet's own sign-in still goes through.
    assert verify(http, account, own_message(account.address, nonce)).status_code == 200
