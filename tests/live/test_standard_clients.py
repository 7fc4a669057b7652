"""Live status followed by the clients people use, not only by this suite's reader: the
npm `eventsource` package in Node, with a stream ticket, to the end of a purchase and
without a reconnect loop (the browser's own EventSource: test_browser_eventsource.py);
and a client generated from the served OpenAPI document by `openapi-python-client`."""

from __future__ import annotations

import asyncio
import importlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from service.app import create_app
from service.columns import utcnow
from service.database import Database
from service.merchant_webhooks import outbox
from service.onramp import repository
from service.onramp.models import DeliveryVerdict
from service.settings import DatabaseSettings, Settings
from tests.live.streams import Replicas, serving_apps, stream_url, ticket_for
from tests.onramp.conftest import new_wallet
from tests.support.node import SCRIPTS

T = TypeVar("T")

PURCHASE = ("requires_payment", "fulfillment_processing", "fulfillment_complete")


async def deliver(database_url: str, session: dict[str, Any]) -> None:
    """The delivery worker's verdict, from a process of its own (another `Database`)."""
    database = Database(DatabaseSettings(DATABASE_URL=database_url))
    try:
        async with database.transaction() as sql:
            verdict = DeliveryVerdict(
                session["id"], "confirmed", "1 confirmation", "98.49", 1, 7, None
            )
            await repository.record_verdicts(sql, [verdict], utcnow(), outbox)
    finally:
        await database.dispose()


async def buy_to_the_end(
    client: httpx.AsyncClient, replicas: Replicas, session: dict[str, Any], database_url: str
) -> None:
    for status in PURCHASE:
        await replicas.webhook(client, session, status)
    await deliver(database_url, session)


@pytest.fixture
def one_server(live_settings: Callable[..., Settings]) -> Iterator[Replicas]:
    """One process: Stripe's news reaches it, so each status reaches its streams."""
    with serving_apps([create_app(live_settings())]) as urls:
        yield Replicas(urls, new_wallet())


async def test_node_eventsource_follows_a_purchase_to_its_end_and_stops(
    one_server: Replicas, database_url: str
) -> None:
    replicas = one_server
    async with httpx.AsyncClient(timeout=10) as client:
        session = await replicas.create(client)
        ticket = (await ticket_for(client, replicas, session))["ticket"]
        url = f"{stream_url(replicas, session)}?ticket={ticket}"
        node = await asyncio.create_subprocess_exec(
            "node",
            str(SCRIPTS / "follow_with_eventsource.mjs"),
            json.dumps({"url": url, "withinMs": 20_000}),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert node.stderr is not None
        async with asyncio.timeout(10):  # the stream is open and has sent the session
            while b"session initialized" not in await node.stderr.readline():
                pass
        await buy_to_the_end(client, replicas, session, database_url)
        async with asyncio.timeout(25):
            printed, _ = await node.communicate()
    ended = json.loads(printed)
    assert ended["statuses"] == ["initialized", *PURCHASE, "fulfillment_complete"]
    # One stream to the settled session, one reconnect refused (its ticket is spent),
    # and nothing after.
    assert ended["requests"] == [200, 401]
    assert ended["how"] == "closed"


@pytest.fixture
def generated_client(replicas: Replicas, tmp_path: Path) -> Iterator[Any]:
    """The package `openapi-python-client` generates from the served document, imported."""
    document = tmp_path / "openapi.json"
    document.write_text(httpx.get(f"{replicas.urls[0]}/schema/openapi.json").text)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"post_hooks": []}))
    subprocess.run(
        [
            str(Path(sys.executable).parent / "openapi-python-client"),
            "generate",
            "--path",
            str(document),
            "--meta",
            "none",
            "--config",
            str(config),
            "--output-path",
            str(tmp_path / "onramp_generated"),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
        timeout=120,
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module("onramp_generated")
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("onramp_generated")]:
            del sys.modules[name]


def session_events_in(text: str) -> list[dict[str, Any]]:
    """The sessions in a Server-Sent Events text: each `data:` line is one session."""
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]


async def test_a_generated_python_client_reads_the_stream_as_text(
    replicas: Replicas, generated_client: Any, database_url: str
) -> None:
    events_api = importlib.import_module(
        "onramp_generated.api.onramp.api_v1_onramp_sessions_session_id_events_session_event_stream"
    )
    ticket_api = importlib.import_module(
        "onramp_generated.api.onramp.api_v1_onramp_sessions_session_id_events_ticket_issue_stream_ticket"
    )
    models = importlib.import_module("onramp_generated.models")
    signed_in = generated_client.AuthenticatedClient(
        base_url=replicas.urls[0], token=replicas.headers["Authorization"].split()[1]
    )
    anonymous = generated_client.Client(base_url=replicas.urls[0], timeout=httpx.Timeout(10))
    async with httpx.AsyncClient(timeout=10) as client:
        session = await replicas.create(client)
        settled = await replicas.create(client)
        await replicas.webhook(client, settled, "rejected")

    # A settled session: 204 and nothing to parse.
    done = await events_api.asyncio_detailed(settled["id"], client=signed_in)
    assert done.status_code == 204
    assert done.parsed is None

    # An open session, followed to its end with a ticket: the body comes back as the
    # stream's text (never parsed as JSON); its `data:` lines are the generated model.
    issued = await ticket_api.asyncio(session["id"], client=signed_in)
    assert isinstance(issued, models.TicketIssued)
    call = asyncio.create_task(
        events_api.asyncio_detailed(session["id"], client=anonymous, ticket=issued.ticket)
    )
    await asyncio.sleep(0)
    async with httpx.AsyncClient(timeout=10) as client:
        await asyncio.sleep(0.2)
        await replicas.webhook(client, session, "rejected")
    async with asyncio.timeout(10):
        answered = await call
    assert answered.status_code == 200
    assert isinstance(answered.parsed, str)
    followed = [models.SessionPublic.from_dict(s) for s in session_events_in(answered.parsed)]
    assert followed[-1].status == "rejected"

    # What a program does with a session still open: stream with the generated client's
    # own httpx client, each event as it comes, and stop when it has what it needs.
    other = await replicas.create(httpx.AsyncClient(timeout=10))
    ticket = (await ticket_api.asyncio(other["id"], client=signed_in)).ticket
    path = f"/api/v1/onramp/sessions/{other['id']}/events"
    async with (
        asyncio.timeout(10),
        anonymous.get_async_httpx_client().stream("GET", path, params={"ticket": ticket}) as r,
    ):
        assert r.headers["content-type"].startswith("text/event-stream")
        async for line in r.aiter_lines():
            if line.startswith("data:"):
                first = models.SessionPublic.from_dict(json.loads(line[5:]))
                break
    assert first.status == "initialized"


def test_the_document_describes_the_stream_as_events_of_sessions(replicas: Replicas) -> None:
    document = httpx.get(f"{replicas.urls[0]}/schema/openapi.json").json()
    operation = document["paths"]["/api/v1/onramp/sessions/{session_id}/events"]["get"]
    ok = operation["responses"]["200"]["content"]
    assert list(ok) == ["text/event-stream"]
    assert ok["text/event-stream"]["schema"] == {"type": "string"}
    data = ok["text/event-stream"]["itemSchema"]["properties"]["data"]
    assert data["contentMediaType"] == "application/json"
    name = data["contentSchema"]["$ref"].rsplit("/", 1)[1]
    assert "status" in document["components"]["schemas"][name]["properties"]
    assert "ticket" in [p["name"] for p in operation["parameters"] if p["in"] == "query"]
