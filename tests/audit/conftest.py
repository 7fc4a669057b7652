"""The operators' keys and their audit trail, on the real app (PostgreSQL) against the
Stripe stand-in: a named key that may change things, a bare one, and a read-only one."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.onramp.conftest import Caller, make_onramp_app, new_wallet, stripe_env
from tests.support.orm import run_sql

__all__ = ["make_onramp_app", "stripe_env"]

WRITER_SECRET = "writer-secret-" + "w" * 24
BARE_SECRET = "bare-secret-" + "b" * 24
READER_SECRET = "reader-secret-" + "r" * 24
SECRETS = (WRITER_SECRET, BARE_SECRET, READER_SECRET)
BARE_NAME = "key-" + hashlib.sha256(BARE_SECRET.encode()).hexdigest()[:8]
OPERATOR_KEYS = {
    "ADMIN_API_KEYS": f"alice:{WRITER_SECRET},{BARE_SECRET}",
    "ADMIN_READONLY_API_KEYS": f"auditor:{READER_SECRET}",
    "ADMIN_AUTH_FAILURES_PER_MINUTE": "3",
}


def key(secret: str, client: str = "198.51.100.1") -> dict[str, str]:
    """An operator's headers, from the client address `client` (TRUSTED_PROXIES=*)."""
    return {"X-API-Key": secret, "X-Forwarded-For": client}


@pytest.fixture
async def operators(
    make_onramp_app: Callable[..., Litestar],
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=make_onramp_app(**OPERATOR_KEYS)) as client:
        yield client


@pytest.fixture
def caller(operators: AsyncTestClient[Litestar]) -> Caller:
    return Caller(operators, new_wallet())


async def trail(client: AsyncTestClient[Litestar], **params: Any) -> httpx.Response:
    listed = await client.get("/api/v1/admin/audit", params=params, headers=key(READER_SECRET))
    assert listed.status_code == 200, listed.text
    return listed


async def stored_rows(database_url: str) -> list[tuple[Any, ...]]:
    """Every column of every row, read behind the service's back."""
    return await run_sql(database_url, "SELECT * FROM operator_actions ORDER BY id")


def assert_no_secret(rows: object) -> None:
    for secret in SECRETS:
        assert secret not in repr(rows)
