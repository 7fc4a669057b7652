"""Arbitrary strings, bytes and JSON against the sign-in routes: a clean 4xx, never a 500."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import TestClient

from service.app import create_app
from service.auth import rules
from service.auth.signatures import ERC6492_SUFFIX
from service.settings import Settings
from tests.support.anvil import Anvil
from tests.support.environment import BASE_ENV

SIGNER = Account.from_key("0x" + "22" * 32)
NOW = datetime.now(UTC)
VALID_MESSAGE = rules.build_message(
    SIGNER.address,
    "abcdefgh12345678",
    NOW,
    NOW + timedelta(minutes=5),
    rules.Audience("localhost:8000", "http://localhost:8000", 31611),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=20), inner, max_size=5)
    ),
    max_leaves=20,
)
fuzz = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def client(migrated: dict[str, str]) -> Iterator[TestClient[Litestar]]:
    app = create_app(
        Settings.from_env(
            {**BASE_ENV, "DATABASE_URL": migrated["postgresql"], "RATE_LIMIT_PER_MINUTE": "1000000"}
        )
    )
    with TestClient(app=app) as test_client:
        yield test_client


def assert_clean_refusal(response: object) -> None:
    status = response.status_code  # type: ignore[attr-defined]
    assert 400 <= status < 500, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    assert response.json()["code"]  # type: ignore[attr-defined]


@fuzz
@given(message=st.text(max_size=1500), signature=st.text(max_size=300))
def test_verify_refuses_arbitrary_text(
    client: TestClient[Litestar], message: str, signature: str
) -> None:
    response = client.post("/api/v1/auth/verify", json={"message": message, "signature": signature})
    assert_clean_refusal(response)


@fuzz
@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(VALID_MESSAGE) - 1), st.characters(codec="utf-8")),
        min_size=1,
        max_size=4,
    ),
    signature=st.binary(min_size=0, max_size=140),
)
def test_verify_refuses_mutated_messages_and_random_signatures(
    client: TestClient[Litestar], edits: list[tuple[int, str]], signature: bytes
) -> None:
    message = list(VALID_MESSAGE)
    for position, character in edits:
        message[position] = character
    response = client.post(
        "/api/v1/auth/verify",
        json={"message": "".join(message), "signature": "0x" + signature.hex()},
    )
    assert_clean_refusal(response)


@fuzz
@given(body=json_values)
def test_both_routes_refuse_arbitrary_json(client: TestClient[Litestar], body: object) -> None:
    for path in ("/api/v1/auth/nonce", "/api/v1/auth/verify"):
        assert_clean_refusal(
            client.post(
                path, content=json.dumps(body), headers={"content-type": "application/json"}
            )
        )


@fuzz
@given(body=st.binary(max_size=500))
def test_both_routes_refuse_arbitrary_bytes(client: TestClient[Litestar], body: bytes) -> None:
    for path in ("/api/v1/auth/nonce", "/api/v1/auth/verify"):
        response = client.post(path, content=body, headers={"content-type": "application/json"})
        if response.status_code == 200:  # the bytes happened to be a valid nonce request
            continue
        assert_clean_refusal(response)


@pytest.fixture(scope="module")
def chain_client(migrated: dict[str, str], anvil: Anvil) -> Iterator[TestClient[Litestar]]:
    env = {
        **BASE_ENV,
        "DATABASE_URL": migrated["postgresql"],
        "RATE_LIMIT_PER_MINUTE": "1000000",
        "RATE_LIMIT_CHAIN_CHECKS_PER_MINUTE": "1000000",
        "MEZO_RPC_URLS": anvil.url,
    }
    with TestClient(app=create_app(Settings.from_env(env))) as test_client:
        yield test_client


@fuzz
@given(signature=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_verify_refuses_arbitrary_signatures_over_an_issued_nonce(
    chain_client: TestClient[Litestar], signature: bytes
) -> None:
    """The signature checks proper (recovery, then EIP-1271 on the chain) see every input."""
    issued = chain_client.post("/api/v1/auth/nonce", json={"walletAddress": SIGNER.address}).json()
    response = chain_client.post(
        "/api/v1/auth/verify",
        json={"message": issued["message"], "signature": "0x" + signature.hex()},
    )
    assert response.status_code == 401, response.text
    assert response.json()["code"] in {"signature_invalid", "signature_malformed"}


BITCOIN_ADDRESS = "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"


@fuzz
@given(
    signature=st.binary(min_size=65, max_size=65).map(
        lambda raw: bytes([27 + raw[0] % 16]) + raw[1:]
    )
    | st.binary(min_size=1, max_size=100),
    as_base64=st.booleans(),
)
def test_verify_refuses_arbitrary_bitcoin_signatures_over_an_issued_nonce(
    chain_client: TestClient[Litestar], signature: bytes, as_base64: bool
) -> None:
    """Recovery on the curve, and the address of each header's kind, see every input."""
    issued = chain_client.post("/api/v1/auth/nonce", json={"walletAddress": BITCOIN_ADDRESS})
    text = base64.b64encode(signature).decode() if as_base64 else "0x" + signature.hex()
    response = chain_client.post(
        "/api/v1/auth/verify", json={"message": issued.json()["message"], "signature": text}
    )
    assert response.status_code == 401, response.text
    assert response.json()["code"] in {"signature_invalid", "signature_malformed"}


@fuzz
@given(wrapped=st.binary(max_size=300))
def test_verify_refuses_arbitrary_erc6492_wrappers(
    chain_client: TestClient[Litestar], wrapped: bytes
) -> None:
    """Whatever a wrapper holds, the validator's deployless call answers no, not an error."""
    issued = chain_client.post("/api/v1/auth/nonce", json={"walletAddress": SIGNER.address}).json()
    signature = "0x" + wrapped.hex() + ERC6492_SUFFIX.hex()
    response = chain_client.post(
        "/api/v1/auth/verify", json={"message": issued["message"], "signature": signature}
    )
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "signature_invalid"
