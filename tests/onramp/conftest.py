"""Fixtures for the session routes: the real app wired to the Stripe stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from eth_account import Account
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.auth.tokens import TokenIssuer
from service.columns import utcnow
from service.settings import Settings
from tests.support.stripe import RunningStripe

JWT_SECRET = "t" * 40
ADMIN_KEY = "ops-key-for-tests"


def token_for(wallet: str) -> str:
    """A wallet token exactly as sign-in issues it (sign-in itself is tested elsewhere)."""
    issuer = TokenIssuer(JWT_SECRET, "http://localhost:8000", timedelta(hours=1))
    return issuer.issue(wallet, utcnow()).encoded


@dataclass
class Caller:
    """A signed-in wallet with an HTTP client to the app."""

    client: AsyncTestClient[Litestar]
    wallet: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {token_for(self.wallet)}"}

    async def create(
        self,
        body: dict[str, Any] | None = None,
        key: str | None = None,
        forwarded_for: str | None = None,
    ) -> httpx.Response:
        sent = dict(self.headers)
        if forwarded_for is not None:
            sent["X-Forwarded-For"] = forwarded_for
        if key is not None:
            sent["Idempotency-Key"] = key
        return await self.client.post(
            "/api/v1/onramp/sessions",
            json=body
            if body is not None
            else {"walletAddress": self.wallet, "sourceAmount": "100.00"},
            headers=sent,
        )

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params, headers=self.headers)


def new_wallet() -> str:
    return str(Account.create().address)


@pytest.fixture
def stripe_env(stripe: RunningStripe) -> dict[str, str]:
    return {
        "STRIPE_SECRET_KEY": stripe.secret_key,
        "STRIPE_API_BASE": stripe.url,
        "STRIPE_MAX_NETWORK_RETRIES": "0",
        "STRIPE_TIMEOUT_SECONDS": "3",
        "JWT_SECRET": JWT_SECRET,
        "ADMIN_API_KEYS": ADMIN_KEY,
        "RATE_LIMIT_PER_MINUTE": "100000",
        "TRUSTED_PROXIES": "*",
    }


@pytest.fixture
def make_onramp_app(
    settings_from_env: Callable[..., Settings], stripe_env: dict[str, str], database_url: str
) -> Callable[..., Litestar]:
    """Apps on each database in turn (see `database_url`), against the stand-in."""

    def build(**env: str) -> Litestar:
        settings = settings_from_env(**{**stripe_env, "DATABASE_URL": database_url, **env})
        return create_app(settings)

    return build


@pytest.fixture
def onramp_app(make_onramp_app: Callable[..., Litestar]) -> Litestar:
    return make_onramp_app()


@pytest.fixture
async def client(onramp_app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=onramp_app) as test_client:
        yield test_client


@pytest.fixture
def caller(client: AsyncTestClient[Litestar]) -> Caller:
    return Caller(client, new_wallet())
