"""The webhook route's fixtures: the real app with a signing secret, on each database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings
from tests.support.webhooks import WEBHOOK_SECRET


@pytest.fixture
def webhook_app(settings_from_env: Callable[..., Settings], database_url: str) -> Litestar:
    return create_app(
        settings_from_env(DATABASE_URL=database_url, STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET)
    )


@pytest.fixture
async def client(webhook_app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=webhook_app) as test_client:
        yield test_client
