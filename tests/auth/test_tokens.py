"""Wallet tokens across a rotation of `JWT_SECRET`: the first secret signs, every one
listed verifies, a secret taken off the list verifies nothing any more. And across
replicas whose clocks differ: a token issued a little in this clock's future is taken
(JWT_LEEWAY_SECONDS), an expired one never."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
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


def whole_seconds_ahead(seconds: int) -> datetime:
    """A moment `seconds` ahead of this clock, on a whole second so that the token's
    `iat` (whole seconds) is no earlier than that."""
    return datetime.fromtimestamp(math.ceil(time.time()) + seconds, UTC)


async def test_tokens_from_a_replica_whose_clock_runs_ahead_are_accepted_within_the_leeway(
    settings_from_env: Callable[..., Settings], migrated_sqlite: str
) -> None:
    """JWT_LEEWAY_SECONDS (30) on `iat`, through the real routes; none on the expiry."""
    ahead = issuer(NEW)  # another replica, signing with the same secret

    async def me(app_env: dict[str, str], token: str) -> int:
        settings = settings_from_env(DATABASE_URL=migrated_sqlite, JWT_SECRET=NEW, **app_env)
        async with AsyncTestClient(app=create_app(settings)) as client:
            headers = {"Authorization": f"Bearer {token}"}
            return (await client.get("/api/v1/auth/me", headers=headers)).status_code

    five_ahead = ahead.issue(WALLET, datetime.now(UTC) + timedelta(seconds=5)).encoded
    assert await me({}, five_ahead) == 200
    assert await me({}, ahead.issue(WALLET, whole_seconds_ahead(31)).encoded) == 401
    expired = ahead.issue(WALLET, datetime.now(UTC) - timedelta(hours=1, seconds=1))
    assert expired.expires_at < datetime.now(UTC)
    assert await me({}, expired.encoded) == 401  # at once: no leeway on the expiry
    assert await me({"JWT_LEEWAY_SECONDS": "0"}, five_ahead) == 401


def test_not_before_has_the_same_leeway_and_expiry_none() -> None:
    reader = TokenIssuer(NEW, URI, timedelta(hours=1), leeway=timedelta(seconds=30))
    now = math.floor(time.time())

    def token(**times: int) -> str:
        claims = {"sub": WALLET, "iss": URI, "aud": AUDIENCE, "iat": now, "exp": now + 60}
        return jwt.encode(claims | times, NEW, algorithm="HS256")

    assert reader.read(token(nbf=now + 5)).wallet_address == WALLET
    with pytest.raises(Unauthorized):
        reader.read(token(nbf=math.ceil(time.time()) + 31))
    with pytest.raises(Unauthorized):
        reader.read(token(exp=now - 1))
    with pytest.raises(Unauthorized):
        reader.read(token(iat=now + 3600))


def test_jwt_leeway_is_a_setting_with_bounds() -> None:
    assert Settings.from_env({}).auth.jwt_leeway_seconds == 30
    with pytest.raises(ConfigurationError):
        Settings.from_env({"JWT_LEEWAY_SECONDS": "-1"})


@pytest.mark.parametrize("bitcoin_address", [None, "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"])
def test_a_token_is_what_pyjwt_writes_for_its_claims(bitcoin_address: str | None) -> None:
    """Signed with PyJWT's HS256, its secret checked once: the same bytes as `jwt.encode`."""
    for _ in range(2):
        token = issuer(NEW).issue(WALLET, datetime.now(UTC), bitcoin_address=bitcoin_address)
        header = jwt.get_unverified_header(token.encoded)
        claims = jwt.decode(token.encoded, NEW, algorithms=["HS256"], audience=AUDIENCE, issuer=URI)
        assert header == {"alg": "HS256", "typ": "JWT"}
        assert token.encoded == jwt.encode(claims, NEW, algorithm="HS256")
