"""The stand-in as clients meet it: stripe-python pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import stripe as stripe_sdk

from tests.support.stripe import RunningStripe


@pytest.fixture
async def sdk(stripe: RunningStripe) -> AsyncIterator[stripe_sdk.StripeClient]:
    http = stripe_sdk.HTTPXClient(timeout=5)
    yield stripe_sdk.StripeClient(
        stripe.secret_key,
        base_addresses={"api": stripe.url},
        max_network_retries=0,
        http_client=http,
    )
    await http.close_async()  # type: ignore[no-untyped-call]
