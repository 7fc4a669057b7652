"""The real app with operator keys, on each database in turn, and a way to send an
event through Stripe's webhook as the service receives it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings

WRITER = "hooks-writer-" + "w" * 30
READER = "hooks-reader-" + "r" * 30
KEYS = {"ADMIN_API_KEYS": f"ops:{WRITER}", "ADMIN_READONLY_API_KEYS": f"auditor:{READER}"}
BASE = "/api/v1/admin/webhook-endpoints"


def writer() -> dict[str, str]:
    return {"X-API-Key": WRITER}


def reader() -> dict[str, str]:
    return {"X-API-Key": READER}


@pytest.fixture
def hooks_settings(
    make_settings: Callable[..., Settings], database_url: str
) -> Callable[..., Settings]:
    def build(**env: str) -> Settings:
        return make_settings(**{"DATABASE_URL": database_url, **KEYS, **env})

    return build


@pytest.fixture
async def operators(
    hooks_settings: Callable[..., Settings],
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=create_app(hooks_settings())) as client:
        yield client


async def register(client: AsyncTestClient[Litestar], url: str, **body: Any) -> dict[str, Any]:
    created = await client.post(BASE, json={"url": url, **body}, headers=writer())
    assert created.status_code == 201, created.text
    registered: dict[str, Any] = created.json()
    return registered
