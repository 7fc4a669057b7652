"""The stand-in's objects against Stripe's published schema (stripe_onramp_schema.json):
a created and a retrieved session, a page of the list, a refusal, and an event as a
webhook endpoint receives it. The schema is a copy of Stripe's lists with the service's
additions marked; each list is held here to where the code declares it."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import stripe as stripe_sdk
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from service import registry
from service.onramp.stripe_client import API_VERSION
from service.stripe_sim.offer import DESTINATION_TAGS, STRIPE_DESTINATIONS, STRIPE_WALLET_KEYS
from service.stripe_sim.sessions import STATUSES, new_session
from tests.stripe_sim.conftest import Receiver
from tests.stripe_sim.test_simulator import PARAMS
from tests.support.stripe import RunningStripe
from tests.support.webhooks import WEBHOOK_SECRET

SCHEMA = json.loads((Path(__file__).parent / "stripe_onramp_schema.json").read_text())
EXTENSION = "x-onramp-extension"


@cache
def _registry() -> Registry[Any]:
    return Resource.from_contents(SCHEMA) @ Registry()


def problems(name: str, instance: Any) -> list[str]:
    """Every way `instance` breaks the schema's `$defs/<name>`, each with its path."""
    validator = Draft202012Validator(
        {"$ref": f"{SCHEMA['$id']}#/$defs/{name}"}, registry=_registry()
    )
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(instance)
    ]


def _split(choices: dict[str, Any]) -> tuple[set[str], set[str]]:
    """Stripe's values and the service's additions of a `network` or `currency`."""
    stripes, ours = choices["anyOf"]
    assert EXTENSION not in stripes
    assert ours[EXTENSION] is True
    return set(stripes["enum"]), set(ours["enum"])


def test_the_schema_is_valid_and_its_lists_are_the_codes() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    definitions = SCHEMA["$defs"]
    tokens = registry.tokens()

    stripe_networks, our_networks = _split(definitions["network"])
    assert stripe_networks == set(STRIPE_WALLET_KEYS)
    assert our_networks == {t.network for t in tokens} - set(STRIPE_WALLET_KEYS)

    wallets = definitions["wallet_addresses"]["properties"]
    stripe_keys = {key for key, value in wallets.items() if EXTENSION not in value}
    assert stripe_keys == {*STRIPE_WALLET_KEYS.values(), DESTINATION_TAGS}
    assert set(wallets) - stripe_keys == {t.stripe_wallet_key for t in tokens} - stripe_keys
    assert set(definitions["wallet_addresses"]["required"]) == set(wallets)

    stripe_currencies, our_currencies = _split(definitions["currency"])
    assert set().union(*STRIPE_DESTINATIONS.values()) <= stripe_currencies
    assert our_currencies == {t.currency for t in tokens} - stripe_currencies

    assert definitions["session"]["properties"]["status"]["enum"] == list(STATUSES)
    assert definitions["event"]["properties"]["api_version"]["const"] == API_VERSION


def test_the_schema_refuses_what_stripe_would_not_send() -> None:
    """The schema is closed: a session missing a wallet key, or with one Stripe does not
    list, fails it."""
    session = _a_session()
    assert problems("session", session) == []
    missing = json.loads(json.dumps(session))
    del missing["transaction_details"]["wallet_addresses"]["celo"]
    assert problems("session", missing)
    invented = json.loads(json.dumps(session))
    invented["transaction_details"]["wallet_addresses"]["base"] = None
    assert problems("session", invented)


async def test_the_stand_ins_objects_match_stripes_schema(
    sdk: stripe_sdk.StripeClient,
    stripe: RunningStripe,
    receiver: tuple[Receiver, str],
) -> None:
    endpoint, url = receiver
    stripe.send_webhooks_to(url, WEBHOOK_SECRET)
    created = (await sdk.raw_request_async("post", "/v1/crypto/onramp_sessions", **PARAMS)).data
    assert problems("session", created) == []
    wallets = created["transaction_details"]["wallet_addresses"]
    assert wallets["mezo"] == PARAMS["wallet_addresses"]["mezo"]
    assert wallets["base_network"] is None
    assert wallets[DESTINATION_TAGS] is None

    path = f"/v1/crypto/onramp_sessions/{created['id']}"
    retrieved = (await sdk.raw_request_async("get", path)).data
    assert retrieved == created
    assert problems("session", retrieved) == []

    stripe.advance(created["id"], "fulfillment_complete", transactionId="0x" + "1" * 64)
    listed = (await sdk.raw_request_async("get", "/v1/crypto/onramp_sessions", limit=5)).data
    assert [s["id"] for s in listed["data"]] == [created["id"]]
    assert problems("session_list", listed) == []

    with pytest.raises(stripe_sdk.InvalidRequestError) as refused:
        await sdk.raw_request_async("get", "/v1/crypto/onramp_sessions", status="bogus")
    assert problems("error", refused.value.json_body) == []

    stripe.wait_for_webhooks()
    [(body, _)] = endpoint.received
    event = json.loads(body)
    assert event["api_version"] == API_VERSION
    assert problems("event", event) == []
    assert event["data"]["object"]["status"] == "fulfillment_complete"


def _a_session() -> dict[str, Any]:
    """A session as the stand-in makes it, from the form Stripe's clients send."""
    return new_session({**PARAMS, "lock_wallet_address": "true"})
