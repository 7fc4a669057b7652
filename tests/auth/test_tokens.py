"""Wallet tokens across a rotation of `JWT_SECRET`: the first secret signs, every one
listed verifies, a secret taken off the list verifies nothing any more."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.auth.tokens import AUDIENCE, TokenIssuer
from service.errors import Unauthorized
from service.settings import ConfigurationError, Settings
from tests.auth.test_sign_in import nonce_for, signature_of, verify
from tests.support.anvil import Anvil

OLD, NEW, OTHER = "o" * 40, "n" * 40, "x" * 40
URI = "http://localhost:8000"
WALLET = "0x52908400098527886E0F7030069857D2E4169EE7"


def issuer(secret: str, *previous: str) -> TokenIssuer:
    return TokenIssuer(secret, URI, timedelta(hours=1), previous_secrets=previous)


def test_the_first_secret_signs_and_every_listed_one_verifies() -> None:
    before = issuer(OLD).issue(WALLET, datetime.now(UTC))
    rotated = issuer(NEW, OLD)
    assert rotated.read(before.encoded).wallet_address == WALLET
    after = rotated.issue(WALLET, datetime.now(UTC))
    assert jwt.get_unverified_header(after.encoded)["alg"] == "HS256"
    assert jwt.decode(after.encoded, NEW, ["HS256"], audience=AUDIENCE)["sub"] == WALLET
    assert issuer(NEW).read(after.encoded).wallet_address == WALLET


def test_a_secret_taken_off_the_list_verifies_nothing() -> None:
    before = issuer(OLD).issue(WALLET, datetime.now(UTC))
    with pytest.raises(Unauthorized):
        issuer(NEW).read(before.encoded)
    with pytest.raises(Unauthorized):
        issuer(NEW, OTHER).read(before.encoded)


def test_an_expired_token_is_refused_whichever_secret_signed_it() -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    for signer in (OLD, NEW):
        expired = issuer(signer).issue(WALLET, long_ago)
        with pytest.raises(Unauthorized):
            issuer(NEW, OLD).read(expired.encoded)


def test_settings_take_several_secrets_each_strong_and_never_echoed() -> None:
    auth = Settings.from_env({"JWT_SECRET": f" {NEW} , {OLD},{NEW}"}).auth
    assert [secret.get_secret_value() for secret in auth.jwt_secrets] == [NEW, OLD]
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({"JWT_SECRET": f"{NEW},short-old-secret"})
    assert raised.value.problems == ["JWT_SECRET: every secret must be at least 32 characters"]
    assert "short-old-secret" not in str(raised.value)


async def test_a_token_signed_before_a_rotation_opens_routes_until_its_secret_is_dropped(
    make_client: Callable[..., AsyncTestClient[Litestar]], anvil: Anvil
) -> None:
    """Sign in, restart with `new,old`, then with `new` alone, as an operator would."""
    account: LocalAccount = Account.create()

    def restarted(secrets: str) -> AsyncTestClient[Litestar]:
        return make_client(MEZO_RPC_URLS=anvil.url, JWT_SECRET=secrets)

    async with restarted(OLD) as client:
        issued = await nonce_for(client, account.address)
        signed_in = await verify(
            client, issued["message"], signature_of(account, issued["message"])
        )
        assert signed_in.status_code == 200, signed_in.text
    old_token = {"Authorization": f"Bearer {signed_in.json()['token']}"}

    async with restarted(f"{NEW},{OLD}") as client:
        me = await client.get("/api/v1/auth/me", headers=old_token)
        assert me.status_code == 200, me.text
        assert me.json()["walletAddress"] == account.address
        issued = await nonce_for(client, account.address)
        signed_in = await verify(
            client, issued["message"], signature_of(account, issued["message"])
        )
    new_token = {"Authorization": f"Bearer {signed_in.json()['token']}"}

    async with restarted(NEW) as client:
        refused = await client.get("/api/v1/auth/me", headers=old_token)
        assert refused.status_code == 401
        assert refused.json()["code"] == "unauthorized"
        assert (await client.get("/api/v1/auth/me", headers=new_token)).status_code == 200
