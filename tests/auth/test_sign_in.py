"""Sign-in through the real app, PostgreSQL and a local chain, with real keys."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from litestar import Litestar, get
from litestar.testing import AsyncTestClient
from siwe import SiweMessage
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from service.app import create_app
from service.auth.guards import Operator
from service.columns import utcnow
from service.database import Database
from service.operations.provider import OperationsServices
from service.retention.job import run_retention
from service.settings import DatabaseSettings, RetentionSettings, Settings
from tests.support.anvil import Anvil
from tests.support.processes import serving

Client = Callable[..., AsyncTestClient[Litestar]]
DOMAIN, URI, CHAIN_ID = "localhost:8000", "http://localhost:8000", 31611


def signature_of(account: LocalAccount, message: str) -> str:
    return "0x" + bytes(account.sign_message(encode_defunct(text=message)).signature).hex()


def own_message(wallet: str, nonce: str, **changes: Any) -> str:
    """A message a client built itself around a nonce."""
    fields: dict[str, Any] = {
        "domain": DOMAIN,
        "address": wallet,
        "uri": URI,
        "version": "1",
        "chain_id": CHAIN_ID,
        "nonce": nonce,
        "issued_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    fields.update(changes)
    return str(SiweMessage(**fields).prepare_message())


async def nonce_for(client: AsyncTestClient[Litestar], wallet: str) -> dict[str, Any]:
    response = await client.post("/api/v1/auth/nonce", json={"walletAddress": wallet})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def verify(client: AsyncTestClient[Litestar], message: str, signature: str) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/verify", json={"message": message, "signature": signature}
    )


def assert_refused(response: httpx.Response, code: str) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["code"] == code
    assert "token" not in body


@pytest.fixture
def chain_client(make_client: Client, anvil: Anvil) -> Callable[..., AsyncTestClient[Litestar]]:
    def build(**env: str) -> AsyncTestClient[Litestar]:
        return make_client(MEZO_RPC_URLS=anvil.url, **env)

    return build


@pytest.fixture
def account() -> LocalAccount:
    created: LocalAccount = Account.create()
    return created


async def test_a_signed_nonce_message_gets_a_token_that_opens_protected_routes(
    chain_client: Client, account: LocalAccount
) -> None:
    async with chain_client() as client:
        issued = await nonce_for(client, account.address.lower())
        assert account.address in issued["message"]
        assert f"Nonce: {issued['nonce']}" in issued["message"]
        assert f"Chain ID: {CHAIN_ID}" in issued["message"]
        assert issued["message"].startswith(f"{DOMAIN} wants you to sign in")
        assert issued["expiresAt"].endswith("Z")

        response = await verify(client, issued["message"], signature_of(account, issued["message"]))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["walletAddress"] == account.address
        expires_at = datetime.fromisoformat(body["expiresAt"])
        assert timedelta(minutes=55) < expires_at - datetime.now(UTC) <= timedelta(hours=1)

        me = await client.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {body['token']}"}
        )
        assert me.status_code == 200
        assert me.json()["walletAddress"] == account.address


async def test_an_invalid_wallet_address_gets_no_nonce(chain_client: Client) -> None:
    async with chain_client() as client:
        response = await client.post(
            "/api/v1/auth/nonce",
            json={"walletAddress": "0x52908400098527886e0F7030069857D2E4169EE7"},
        )
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_wallet_address"
        unknown = await client.post(
            "/api/v1/auth/nonce", json={"walletAddress": "0x" + "1" * 40, "extra": 1}
        )
        assert unknown.status_code == 400


async def test_wrong_signer_is_refused(chain_client: Client, account: LocalAccount) -> None:
    async with chain_client() as client:
        issued = await nonce_for(client, account.address)
        stranger: LocalAccount = Account.create()
        response = await verify(
            client, issued["message"], signature_of(stranger, issued["message"])
        )
        assert_refused(response, "signature_invalid")
        # The refused attempt did not spend the nonce: the real owner can still sign in.
        ok = await verify(client, issued["message"], signature_of(account, issued["message"]))
        assert ok.status_code == 200


async def test_a_tampered_message_is_refused(chain_client: Client, account: LocalAccount) -> None:
    async with chain_client() as client:
        issued = await nonce_for(client, account.address)
        signature = signature_of(account, issued["message"])
        tampered = issued["message"].replace("Sign in to buy MUSD", "Sign in to buy BTC")
        assert_refused(await verify(client, tampered, signature), "signature_invalid")


async def test_a_nonce_is_single_use(chain_client: Client, account: LocalAccount) -> None:
    async with chain_client() as client:
        issued = await nonce_for(client, account.address)
        signature = signature_of(account, issued["message"])
        assert (await verify(client, issued["message"], signature)).status_code == 200
        assert_refused(await verify(client, issued["message"], signature), "nonce_used")


async def test_a_nonce_not_issued_by_the_service_is_refused(
    chain_client: Client, account: LocalAccount
) -> None:
    async with chain_client() as client:
        message = own_message(account.address, secrets.token_hex(12))
        assert_refused(
            await verify(client, message, signature_of(account, message)), "nonce_invalid"
        )


async def test_a_nonce_issued_for_another_wallet_is_refused(
    chain_client: Client, account: LocalAccount
) -> None:
    async with chain_client() as client:
        other: LocalAccount = Account.create()
        issued = await nonce_for(client, other.address)
        message = own_message(account.address, issued["nonce"])
        assert_refused(
            await verify(client, message, signature_of(account, message)), "nonce_invalid"
        )


async def test_an_expired_nonce_is_refused(
    chain_client: Client, account: LocalAccount, migrated: dict[str, str]
) -> None:
    async with chain_client() as client:
        issued = await nonce_for(client, account.address)
        engine = create_async_engine(
            DatabaseSettings(DATABASE_URL=migrated["postgresql"]).async_url
        )
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "UPDATE auth_nonces SET expires_at = now() - interval '1 second' "
                    "WHERE nonce = :n"
                ),
                {"n": issued["nonce"]},
            )
        await engine.dispose()
        message = own_message(account.address, issued["nonce"])
        assert_refused(
            await verify(client, message, signature_of(account, message)), "nonce_expired"
        )


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"domain": "evil.example"}, "domain_mismatch"),
        ({"uri": "https://evil.example"}, "uri_mismatch"),
        ({"chain_id": 1}, "chain_id_mismatch"),
        ({"expiration_time": "2020-01-01T00:00:00Z"}, "message_expired"),
        ({"not_before": "2099-01-01T00:00:00Z"}, "message_not_yet_valid"),
        ({"issued_at": "2099-01-01T00:00:00Z"}, "message_not_yet_valid"),
    ],
)
async def test_messages_meant_for_elsewhere_or_another_time_are_refused(
    chain_client: Client, account: LocalAccount, changes: dict[str, Any], code: str
) -> None:
    async with chain_client() as client:
        issued = await nonce_for(client, account.address)
        message = own_message(account.address, issued["nonce"], **changes)
        assert_refused(await verify(client, message, signature_of(account, message)), code)
        # None of these spent the nonce.
        good = own_message(account.address, issued["nonce"])
        assert (await verify(client, good, signature_of(account, good))).status_code == 200


async def test_a_malformed_message_is_refused(chain_client: Client, account: LocalAccount) -> None:
    async with chain_client() as client:
        issued = await nonce_for(client, account.address)
        broken = issued["message"].replace("Version: 1", "Version: one")
        assert_refused(
            await verify(client, broken, signature_of(account, broken)), "message_malformed"
        )


@pytest.mark.parametrize(
    ("signature", "code"),
    [
        ("0x" + "ab" * 63, "signature_malformed"),
        ("0x" + "ab" * 64, "signature_invalid"),  # a compact signature, of someone else
        ("0x" + "ab" * 66, "signature_malformed"),
        ("not hex", "signature_malformed"),
        ("0xabc", "signature_malformed"),
    ],
)
async def test_signatures_of_the_wrong_shape_are_refused(
    chain_client: Client, account: LocalAccount, signature: str, code: str
) -> None:
    async with chain_client() as client:
        issued = await nonce_for(client, account.address)
        assert_refused(await verify(client, issued["message"], signature), code)


def compact(signature: str) -> str:
    """EIP-2098: r, then s with yParity in its top bit."""
    raw = bytes.fromhex(signature[2:])
    y_parity_and_s = int.from_bytes(raw[32:64], "big") | ((raw[64] - 27) << 255)
    return "0x" + raw[:32].hex() + y_parity_and_s.to_bytes(32, "big").hex()


async def test_an_eip_2098_compact_signature_signs_in(
    chain_client: Client, account: LocalAccount
) -> None:
    async with chain_client() as client:
        issued = await nonce_for(client, account.address)
        signature = compact(signature_of(account, issued["message"]))
        assert len(signature) == 2 + 128
        response = await verify(client, issued["message"], signature)
    assert response.status_code == 200, response.text
    assert response.json()["walletAddress"] == account.address


async def test_a_contract_wallet_signs_in_through_its_owner(
    chain_client: Client, anvil: Anvil, account: LocalAccount
) -> None:
    wallet = anvil.deploy("OwnerWallet", account.address)
    async with chain_client() as client:
        issued = await nonce_for(client, wallet)
        stranger: LocalAccount = Account.create()
        refused = await verify(client, issued["message"], signature_of(stranger, issued["message"]))
        assert_refused(refused, "signature_invalid")
        assert_refused(
            await verify(client, issued["message"], "0x" + "00" * 10), "signature_invalid"
        )

        response = await verify(client, issued["message"], signature_of(account, issued["message"]))
        assert response.status_code == 200, response.text
        assert response.json()["walletAddress"] == wallet


async def test_a_contract_wallet_cannot_sign_in_while_no_node_answers(
    make_client: Client, account: LocalAccount
) -> None:
    async with make_client() as client:  # RPC points at a closed port
        issued = await nonce_for(client, "0x" + "7" * 40)
        response = await verify(client, issued["message"], signature_of(account, issued["message"]))
        assert response.status_code == 503
        assert response.json()["code"] == "chain_unavailable"


async def test_concurrent_verifies_of_one_nonce_yield_exactly_one_token(
    make_settings: Callable[..., Settings],
    anvil: Anvil,
    account: LocalAccount,
    database_url: str,
) -> None:
    """Two app instances with their own connection pools, as two replicas would have,
    on each database; requests really run concurrently (ASGI transport, no portal)."""
    settings = make_settings(
        MEZO_RPC_URLS=anvil.url, RATE_LIMIT_PER_MINUTE="1000", DATABASE_URL=database_url
    )
    apps = [create_app(settings), create_app(settings)]
    clients = [
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://onramp")  # type: ignore[arg-type]
        for app in apps
    ]
    try:
        for _ in range(3):
            issued = (
                await clients[0].post("/api/v1/auth/nonce", json={"walletAddress": account.address})
            ).json()
            body = {
                "message": issued["message"],
                "signature": signature_of(account, issued["message"]),
            }
            responses = await asyncio.gather(
                *(c.post("/api/v1/auth/verify", json=body) for c in clients * 6)
            )
            assert sorted(r.status_code for r in responses) == [200] + [401] * 11
            assert {r.json()["code"] for r in responses if r.status_code == 401} == {"nonce_used"}
    finally:
        for client in clients:
            await client.aclose()
        for app in apps:
            await OperationsServices.of(app.state).database.dispose()


@get("/test/ops", security=[{"ApiKey": []}])
async def ops_route(operator: Operator) -> dict[str, str]:
    return {"operator": operator.name}


async def test_protected_routes_need_a_valid_unexpired_token(make_client: Client) -> None:
    async with make_client(JWT_SECRET="s" * 40) as client:
        wallet = "0x52908400098527886E0F7030069857D2E4169EE7"
        now = datetime.now(UTC)
        claims = {"sub": wallet, "aud": "onramp", "iss": URI, "iat": now - timedelta(hours=2)}
        expired = jwt.encode({**claims, "exp": now - timedelta(hours=1)}, "s" * 40, "HS256")
        foreign = jwt.encode({**claims, "exp": now + timedelta(hours=1)}, "x" * 40, "HS256")
        valid = jwt.encode({**claims, "exp": now + timedelta(hours=1)}, "s" * 40, "HS256")
        for headers in (
            {},
            {"Authorization": "Bearer"},
            {"Authorization": "Basic abc"},
            {"Authorization": "Bearer not.a.jwt"},
            {"Authorization": f"Bearer {expired}"},
            {"Authorization": f"Bearer {foreign}"},
        ):
            response = await client.get("/api/v1/auth/me", headers=headers)
            assert response.status_code == 401, headers
            assert response.json()["code"] == "unauthorized"
        ok = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {valid}"})
        assert ok.json()["walletAddress"] == wallet


async def test_operator_routes_take_only_a_valid_api_key(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(ADMIN_API_KEYS="key-one,key-two", JWT_SECRET="s" * 40))
    app.register(ops_route)
    token = jwt.encode(
        {
            "sub": "0x52908400098527886E0F7030069857D2E4169EE7",
            "aud": "onramp",
            "iss": URI,
            "iat": datetime.now(UTC),
            "exp": datetime.now(UTC) + timedelta(hours=1),
        },
        "s" * 40,
        "HS256",
    )
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/test/ops")).status_code == 401
        wallet = await client.get("/test/ops", headers={"Authorization": f"Bearer {token}"})
        assert wallet.status_code == 403
        assert (
            await client.get("/test/ops", headers={"X-API-Key": "key-three"})
        ).status_code == 403
        assert (await client.get("/test/ops", headers={"X-API-Key": ""})).status_code == 403
        for key in ("key-one", "key-two"):
            assert (await client.get("/test/ops", headers={"X-API-Key": key})).status_code == 200


async def test_expired_nonces_go_with_the_retention_job_not_with_a_request(
    chain_client: Client, migrated: dict[str, str], account: LocalAccount
) -> None:
    settings = DatabaseSettings(DATABASE_URL=migrated["postgresql"])
    engine = create_async_engine(settings.async_url)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO auth_nonces (nonce, wallet_address, issued_at, expires_at) "
                "VALUES ('oldnonce0001', :w, now() - interval '3 hours', "
                "now() - interval '2 hours')"
            ),
            {"w": account.address},
        )
    async with chain_client() as client:
        await nonce_for(client, account.address)

    async def left() -> int:
        async with engine.connect() as connection:
            found = await connection.scalar(
                text("SELECT count(*) FROM auth_nonces WHERE nonce = 'oldnonce0001'")
            )
            return int(found or 0)

    assert await left() == 1
    database = Database(settings)
    try:
        await run_retention(database, RetentionSettings(), now=utcnow())
    finally:
        await database.dispose()
    assert await left() == 0
    await engine.dispose()


async def test_concurrent_verifies_across_server_processes_yield_exactly_one_token(
    tmp_path: Path, anvil: Anvil, migrated: dict[str, str], account: LocalAccount
) -> None:
    env = {
        "DATABASE_URL": migrated["postgresql"],
        "MEZO_RPC_URLS": anvil.url,
        "JWT_SECRET": "j" * 40,
        "RATE_LIMIT_PER_MINUTE": "1000",
    }
    with serving(tmp_path, **env) as first, serving(tmp_path, **env) as second:
        async with httpx.AsyncClient(timeout=30) as http:
            for _ in range(3):
                issued = (
                    await http.post(
                        f"{first}/api/v1/auth/nonce", json={"walletAddress": account.address}
                    )
                ).json()
                body = {
                    "message": issued["message"],
                    "signature": signature_of(account, issued["message"]),
                }
                responses = await asyncio.gather(
                    *(
                        http.post(f"{base}/api/v1/auth/verify", json=body)
                        for base in [first, second] * 6
                    )
                )
                assert sorted(r.status_code for r in responses) == [200] + [401] * 11
