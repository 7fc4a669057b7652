"""An attempt to an https endpoint goes to the address that was checked, yet TLS is
the endpoint's own: the server is asked for the endpoint's name (SNI), its certificate
must be for that name, and the `Host` header names it too. Pinning the address must not
turn the certificate check off."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import trustme
from aiohttp import web

from service.merchant_webhooks.sender import Sender

NAME = "hooks.merchant.example"


@dataclass
class TlsReceiver:
    port: int
    seen: list[dict[str, str]] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


async def receiver_for(
    authority: trustme.CA, certified_name: str
) -> tuple[web.AppRunner, TlsReceiver]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(certified_name).configure_cert(context)
    app = web.Application()
    runner = web.AppRunner(app)
    received = TlsReceiver(port=0)

    def note_server_name(
        sock: ssl.SSLSocket | ssl.SSLObject, name: str | None, _: ssl.SSLContext
    ) -> None:
        received.server_names.append(name)

    context.sni_callback = note_server_name

    async def hook(request: web.Request) -> web.Response:
        received.seen.append({"host": request.headers["Host"], "body": await request.text()})
        return web.Response(status=204)

    app.router.add_post("/onramp", hook)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    received.port = runner.addresses[0][1]
    return runner, received


@pytest.fixture
async def sender(authority: trustme.CA) -> AsyncIterator[Sender]:
    trust = ssl.create_default_context()
    authority.configure_trust(trust)

    async def to_loopback(host: str, port: int) -> list[str]:
        return ["127.0.0.1"] if host == NAME else []

    sending = Sender(deployed=False, resolver=to_loopback, trust=trust)
    yield sending
    await sending.close()


async def test_the_pinned_address_still_speaks_tls_to_the_endpoints_own_name(
    authority: trustme.CA, sender: Sender
) -> None:
    runner, received = await receiver_for(authority, NAME)
    try:
        url = f"https://{NAME}:{received.port}/onramp"
        answer = await sender.send(url, {"content-type": "application/json"}, '{"type":"x"}')
    finally:
        await runner.cleanup()
    assert (answer.status_code, answer.error) == (204, None)
    assert received.server_names == [NAME]
    assert received.seen == [{"host": f"{NAME}:{received.port}", "body": '{"type":"x"}'}]


async def test_a_certificate_for_another_name_fails_the_attempt(
    authority: trustme.CA, sender: Sender
) -> None:
    runner, received = await receiver_for(authority, "someone-else.example")
    try:
        answer = await sender.send(f"https://{NAME}:{received.port}/onramp", {}, "{}")
    finally:
        await runner.cleanup()
    assert answer.status_code is None
    assert answer.error is not None
    assert "certificate" in answer.error.lower()
    assert received.seen == []
