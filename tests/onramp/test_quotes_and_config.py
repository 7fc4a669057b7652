"""What a dApp reads before buying: `/api/v1/config` and quotes, through the real app,
database and Stripe stand-in."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.settings import ConfigurationError
from tests.onramp.conftest import Caller, new_wallet
from tests.support.stripe import RunningStripe

QUOTES = "/api/v1/onramp/quotes"
MUSD = "0x118917a40FAF1CD7a13dB0Ef56C86De7973Ac503"


async def test_config_tells_a_frontend_what_it_needs(
    make_onramp_app: Callable[..., Litestar], stripe: RunningStripe
) -> None:
    app = make_onramp_app(
        STRIPE_PUBLISHABLE_KEY="pk_test_onramp",
        MUSD_TOKEN_ADDRESS=MUSD.lower(),
        MIN_SOURCE_AMOUNT="5",
        AUTH_DOMAIN="shop.example",
        AUTH_URI="https://shop.example",
    )
    async with AsyncTestClient(app=app) as client:
        response = await client.get("/api/v1/config")  # public: no token
    assert response.status_code == 200
    config = response.json()
    assert config["publishableKey"] == "pk_test_onramp"
    assert config["stripeStandIn"] is True  # STRIPE_API_BASE is the stand-in's
    assert (config["minSourceAmount"], config["maxSourceAmount"]) == ("5.00", "10000.00")
    assert (config["defaultNetwork"], config["defaultCurrency"]) == ("mezo", "musd")
    musd = next(
        d for d in config["destinations"] if (d["network"], d["currency"]) == ("mezo", "musd")
    )
    assert musd["tokenAddress"] == MUSD
    assert musd["decimals"] == 18
    assert musd["chainId"] == config["signIn"]["chainId"] == 31611
    assert config["signIn"] == {
        "domain": "shop.example",
        "uri": "https://shop.example",
        "chainId": 31611,
    }


@pytest.mark.parametrize(
    ("setting", "explorer"),
    [
        ({}, "https://explorer.test.mezo.org"),  # the registry's, for MEZO_CHAIN_ID 31611
        ({"MEZO_EXPLORER_URL": "https://scan.example/"}, "https://scan.example"),
        ({"MEZO_EXPLORER_URL": ""}, None),  # a local chain: no link
    ],
)
async def test_config_names_the_explorer_that_shows_a_delivery(
    make_onramp_app: Callable[..., Litestar],
    stripe: RunningStripe,
    setting: dict[str, str],
    explorer: str | None,
) -> None:
    async with AsyncTestClient(app=make_onramp_app(**setting)) as client:
        config = (await client.get("/api/v1/config")).json()
    mezo = [d for d in config["destinations"] if d["network"] == "mezo"]
    assert mezo
    assert {d["explorerUrl"] for d in mezo} == {explorer}


def test_an_explorer_that_is_not_a_url_is_refused(
    make_onramp_app: Callable[..., Litestar],
) -> None:
    with pytest.raises(ConfigurationError, match="MEZO_EXPLORER_URL"):
        make_onramp_app(MEZO_EXPLORER_URL="explorer.mezo.org")


async def test_config_without_a_publishable_key_says_so(
    make_onramp_app: Callable[..., Litestar], stripe: RunningStripe
) -> None:
    async with AsyncTestClient(app=make_onramp_app()) as client:
        assert (await client.get("/api/v1/config")).json()["publishableKey"] is None


async def test_config_refuses_a_secret_key_in_place_of_the_publishable_one(
    make_onramp_app: Callable[..., Litestar], stripe: RunningStripe
) -> None:
    with pytest.raises(ConfigurationError, match="STRIPE_PUBLISHABLE_KEY") as refused:
        make_onramp_app(STRIPE_PUBLISHABLE_KEY="sk_test_oops")
    assert "sk_test_oops" not in str(refused.value)  # never echoed


async def test_a_quote_by_source_amount(caller: Caller, stripe: RunningStripe) -> None:
    response = await caller.get(QUOTES, sourceAmount="100.00")
    assert response.status_code == 200, response.text
    quote = response.json()
    assert quote["destinationAmount"] == "98.49"
    assert (quote["destinationNetwork"], quote["destinationCurrency"]) == ("mezo", "musd")
    assert (quote["networkFee"], quote["transactionFee"]) == ("0.01", "1.50")
    assert quote["sourceTotalAmount"] == "100.00"
    assert quote["livemode"] is False


async def test_a_quote_by_destination_amount(caller: Caller, stripe: RunningStripe) -> None:
    response = await caller.get(QUOTES, destinationAmount="50")
    assert response.status_code == 200, response.text
    quote = response.json()
    assert float(quote["destinationAmount"]) >= 50
    assert quote["sourceAmount"] is None
    assert quote["sourceTotalAmount"] == "50.77"


async def test_quotes_are_kept_briefly_per_parameter_set(
    caller: Caller, stripe: RunningStripe
) -> None:
    for _ in range(3):
        assert (await caller.get(QUOTES, sourceAmount="20.00")).status_code == 200
    other = Caller(caller.client, new_wallet())
    assert (await other.get(QUOTES, sourceAmount="20.00")).status_code == 200
    assert (await caller.get(QUOTES, sourceAmount="30.00")).status_code == 200
    assert stripe.stats()["quoteRequests"] == 2


async def test_a_burst_of_the_same_quote_asks_stripe_once(
    caller: Caller, stripe: RunningStripe
) -> None:
    stripe.faults(latency_ms=300)
    answers = await asyncio.gather(*(caller.get(QUOTES, sourceAmount="42.00") for _ in range(8)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["destinationAmount"] for a in answers}) == 1
    assert stripe.stats()["quoteRequests"] == 1


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "invalid_amount"),
        ({"sourceAmount": "10.00", "destinationAmount": "5"}, "invalid_amount"),
        ({"sourceAmount": "10.001"}, "invalid_amount"),
        ({"sourceAmount": "0.50"}, "amount_out_of_range"),
        ({"destinationAmount": "1." + "1" * 19}, "invalid_amount"),
        ({"destinationAmount": "0"}, "invalid_amount"),
        ({"sourceAmount": "10.00", "sourceCurrency": "jpy"}, "unsupported_currency"),
        ({"sourceAmount": "10.00", "destinationNetwork": "moon"}, "unsupported_destination"),
    ],
)
async def test_a_bad_quote_request_is_a_400_and_never_reaches_stripe(
    caller: Caller, stripe: RunningStripe, params: dict[str, Any], code: str
) -> None:
    response = await caller.get(QUOTES, **params)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    assert stripe.stats()["quoteRequests"] == 0


async def test_quotes_need_a_signed_in_wallet(
    client: AsyncTestClient[Litestar], stripe: RunningStripe
) -> None:
    assert (await client.get(QUOTES, params={"sourceAmount": "10.00"})).status_code == 401


async def test_stripe_failing_is_a_502_to_retry(caller: Caller, stripe: RunningStripe) -> None:
    stripe.faults(fail=1)
    response = await caller.get(QUOTES, sourceAmount="12.00")
    assert response.status_code == 502
    assert response.json()["code"] == "stripe_unavailable"
    assert (await caller.get(QUOTES, sourceAmount="12.00")).status_code == 200
