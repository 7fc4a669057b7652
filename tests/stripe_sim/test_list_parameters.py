"""The stand-in reads parameters as Stripe does: an unknown one or a value it cannot take
is a 400 in Stripe's error envelope, never silently ignored; `expand[]` is a parameter
of every call, in both array forms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import stripe as stripe_sdk

from service.demo.local_servers import serve_in_thread
from service.onramp.stripe_client import API_VERSION, StripeOnramp
from service.settings import StripeSettings
from tests.stripe_sim.test_simulator import PARAMS
from tests.support.stripe import RunningStripe

LIST = "/v1/crypto/onramp_sessions"


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({"bogus": "1"}, "parameter_unknown", "bogus"),
        ({"status": "bogus"}, "parameter_invalid_string", "status"),
        ({"destination_network": "moon"}, "parameter_invalid_string", "destination_network"),
        ({"destination_currency": "doge"}, "parameter_invalid_string", "destination_currency"),
        ({"limit": 0}, "parameter_invalid_integer", "limit"),
        ({"limit": 101}, "parameter_invalid_integer", "limit"),
        ({"limit": "ten"}, "parameter_invalid_integer", "limit"),
        ({"created": {"since": 1}}, "parameter_unknown", "created[since]"),
        ({"created": {"gte": "yesterday"}}, "parameter_invalid_integer", "created[gte]"),
    ],
)
async def test_the_list_refuses_what_it_cannot_take(
    sdk: stripe_sdk.StripeClient, params: dict[str, Any], code: str, param: str
) -> None:
    with pytest.raises(stripe_sdk.InvalidRequestError) as refused:
        await sdk.raw_request_async("get", LIST, **params)
    assert refused.value.http_status == 400
    assert (refused.value.code, refused.value.param) == (code, param)
    envelope = refused.value.json_body
    assert isinstance(envelope, dict)
    error = envelope["error"]
    assert error["type"] == "invalid_request_error"
    assert error["doc_url"] == "https://stripe.com/docs/error-codes/" + code.replace("_", "-")
    assert param in error["message"] or code == "parameter_invalid_integer"


async def test_the_list_takes_each_filter_it_knows(sdk: stripe_sdk.StripeClient) -> None:
    await sdk.raw_request_async("post", LIST, **PARAMS)
    found = await sdk.raw_request_async(
        "get",
        LIST,
        status="initialized",
        destination_network="mezo",
        destination_currency="musd",
        created={"gte": 0},
        limit=100,
    )
    assert len(found.data["data"]) == 1
    other = await sdk.raw_request_async("get", LIST, destination_network="base")
    assert other.data["data"] == []


async def test_expand_is_accepted_on_create_retrieve_and_list(
    sdk: stripe_sdk.StripeClient, stripe: RunningStripe
) -> None:
    """stripe-python sends `expand[0]=…`; other clients `expand[]=…`. An onramp session
    has nothing to expand, so a path to one of its fields comes back as it is."""
    created = (await sdk.raw_request_async("post", LIST, **PARAMS, expand=["metadata"])).data
    one = f"{LIST}/{created['id']}"
    retrieved = await sdk.raw_request_async("get", one, expand=["transaction_details.fees"])
    assert retrieved.data == created
    listed = await sdk.raw_request_async("get", LIST, expand=["data.transaction_details"])
    assert [s["id"] for s in listed.data["data"]] == [created["id"]]
    headers = {"Authorization": f"Bearer {stripe.secret_key}"}
    async with httpx.AsyncClient(base_url=stripe.url, headers=headers, timeout=5) as client:
        for path, query in ((one, "expand[]=metadata"), (LIST, "expand[]=data.metadata")):
            answer = await client.get(f"{path}?{query}")
            assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("get", LIST, {"expand": ["customer"]}),
        ("get", LIST, {"expand": ["metadata"]}),  # a list's sessions are under data.
        ("post", LIST, {**PARAMS, "expand": ["customer"]}),
    ],
)
async def test_expanding_a_field_the_object_lacks_is_refused(
    sdk: stripe_sdk.StripeClient, method: str, path: str, params: dict[str, Any]
) -> None:
    with pytest.raises(stripe_sdk.InvalidRequestError) as refused:
        await sdk.raw_request_async(method, path, **params)
    assert refused.value.param == "expand[0]"
    assert "cannot be expanded" in str(refused.value.user_message)


async def test_retrieve_takes_no_parameter_but_expand(sdk: stripe_sdk.StripeClient) -> None:
    created = (await sdk.raw_request_async("post", LIST, **PARAMS)).data
    with pytest.raises(stripe_sdk.InvalidRequestError) as refused:
        await sdk.raw_request_async("get", f"{LIST}/{created['id']}", status="rejected")
    assert (refused.value.code, refused.value.param) == ("parameter_unknown", "status")


async def test_the_services_own_list_call_is_taken_and_names_its_api_version(
    stripe: RunningStripe,
) -> None:
    """What `sessions import` and `reconcile` send (created range, limit 100, the
    cursor) is a list call the stand-in takes, under the service's Stripe-Version."""
    versions: list[str] = []

    async def recording(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            versions.append(headers.get(b"stripe-version", b"").decode())
        await stripe.simulator(scope, receive, send)

    url, server, thread = serve_in_thread(recording)
    client = StripeOnramp(StripeSettings(STRIPE_SECRET_KEY=stripe.secret_key, STRIPE_API_BASE=url))
    try:
        for n in range(3):
            await client.create_session(dict(PARAMS), idempotency_key=f"import-{n}")
        since = datetime.now(UTC) - timedelta(minutes=1)
        pages = [page async for page in client.sessions_created(since, page_size=2)]
    finally:
        await client.close()
        server.should_exit = True
        thread.join(timeout=5)
    assert [len(page) for page in pages] == [2, 1]
    assert set(versions) == {API_VERSION}
