"""The stand-in's embedded onramp as a dApp's page meets it: the script, the session state
it follows (from any origin), and the dApp's content security policy letting both in
only while the stand-in is in use. The browser side is tests/demo/test_example_dapp.py."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import stripe as stripe_sdk
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings
from service.stripe_sim.widget import SCRIPT_PATH, SESSION_PATH
from tests.stripe_sim.test_simulator import PARAMS
from tests.support.stripe import RunningStripe


async def test_the_script_exports_stripes_loader_to_any_origin(stripe: RunningStripe) -> None:
    async with httpx.AsyncClient(timeout=5) as browser:
        script = await browser.get(stripe.url + SCRIPT_PATH, headers={"Origin": "http://app"})
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["access-control-allow-origin"] == "*"
    assert "export async function loadStripeOnramp(" in script.text
    for part in ("createSession", "mount(", "onramp_ui_loaded", "onramp_session_updated"):
        assert part in script.text


async def test_the_widget_follows_a_session_by_its_client_secret(
    sdk: stripe_sdk.StripeClient, stripe: RunningStripe
) -> None:
    created = (await sdk.raw_request_async("post", "/v1/crypto/onramp_sessions", **PARAMS)).data
    secret = created["client_secret"]
    async with httpx.AsyncClient(base_url=stripe.url, timeout=5) as browser:
        before = await browser.get(SESSION_PATH, params={"client_secret": secret})
        stripe.simulator.advance(created["id"], "rejected")
        after = (await browser.get(SESSION_PATH, params={"client_secret": secret})).json()
        other_last = "y" if secret.endswith("x") else "x"
        forged = await browser.get(SESSION_PATH, params={"client_secret": secret[:-1] + other_last})
        missing = await browser.get(SESSION_PATH)
    assert before.headers["access-control-allow-origin"] == "*"
    shown = before.json()
    assert shown["page_url"] == created["redirect_url"]
    assert shown["session"]["id"] == created["id"]
    assert shown["session"]["status"] == "initialized"
    assert shown["session"]["wallet_address"] == PARAMS["wallet_addresses"]["mezo"]
    assert shown["ended"] is False
    assert (after["session"]["status"], after["ended"]) == ("rejected", True)
    assert (forged.status_code, missing.status_code) == (404, 404)


async def test_the_dapps_policy_admits_the_stand_in_only_while_it_is_used(
    settings_from_env: Callable[..., Settings], migrated_sqlite: str
) -> None:
    policies = {}
    for base in ("http://127.0.0.1:12111/", "https://api.stripe.com"):
        settings = settings_from_env(DATABASE_URL=migrated_sqlite, STRIPE_API_BASE=base)
        async with AsyncTestClient(app=create_app(settings)) as client:
            policies[base] = (await client.get("/app/")).headers["content-security-policy"]
    stand_in = policies["http://127.0.0.1:12111/"]
    for directive in ("script-src", "frame-src", "connect-src"):
        assert "http://127.0.0.1:12111" in _directive(stand_in, directive)
    assert "https://crypto-js.stripe.com" in _directive(stand_in, "script-src")
    assert "127.0.0.1" not in policies["https://api.stripe.com"]


def _directive(policy: str, name: str) -> str:
    return next(part for part in policy.split(";") if part.strip().startswith(name))
