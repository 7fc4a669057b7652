"""Arbitrary JSON against the create route: a clean 4xx for anything invalid, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import TestClient

from service.app import create_app
from service.settings import Settings
from tests.onramp.conftest import JWT_SECRET, token_for
from tests.support.environment import BASE_ENV
from tests.support.stripe import RunningStripe

WALLET = str(Account.create().address)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=15), inner, max_size=4)
    ),
    max_leaves=15,
)
fields = st.fixed_dictionaries(
    {},
    optional={
        "walletAddress": st.sampled_from([WALLET, WALLET.lower(), "0x0", ""]) | json_values,
        "sourceAmount": st.from_regex(r"-?[0-9]{0,6}(\.[0-9]{0,4})?", fullmatch=True) | json_values,
        "sourceCurrency": st.sampled_from(["usd", "USD", "jpy", ""]) | json_values,
        "destinationCurrency": st.sampled_from(["musd", "usdc", "x" * 100]) | json_values,
        "destinationNetwork": st.sampled_from(["mezo", "base", "tron"]) | json_values,
        "extra": json_values,
    },
)


@pytest.fixture(scope="module")
def client(
    migrated: dict[str, str], stripe_server: RunningStripe
) -> Iterator[TestClient[Litestar]]:
    env = {
        **BASE_ENV,
        "DATABASE_URL": migrated["postgresql"],
        "RATE_LIMIT_PER_MINUTE": "1000000",
        "JWT_SECRET": JWT_SECRET,
        "STRIPE_SECRET_KEY": stripe_server.secret_key,
        "STRIPE_API_BASE": stripe_server.url,
    }
    with TestClient(app=create_app(Settings.from_env(env))) as test_client:
        yield test_client


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=fields | json_values, key=st.none() | st.text(min_size=1, max_size=20))
def test_create_never_answers_a_500(
    client: TestClient[Litestar], body: object, key: str | None
) -> None:
    headers = {"Authorization": f"Bearer {token_for(WALLET)}"}
    if key is not None and key.isprintable() and key.isascii():
        headers["Idempotency-Key"] = key
    response = client.post(
        "/api/v1/onramp/sessions",
        content=json.dumps(body),
        headers={**headers, "content-type": "application/json"},
    )
    assert response.status_code in {201, 400, 403, 409, 422}, response.text
    if response.status_code != 201:
        assert response.headers["content-type"] == "application/problem+json"
