"""Which client a request counts as, seen through a per-client budget (nonces, one a
minute): X-Forwarded-For only from TRUSTED_PROXIES, its right-most entry that is not a
listed proxy, and the peer itself when an entry is not an IP address."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from eth_account import Account
from litestar import Litestar
from litestar.enums import ScopeType
from litestar.testing import AsyncTestClient
from litestar.types import Receive, Scope, Send

from service.app import create_app
from service.settings import Settings

PROXY = "10.0.0.1"
STRANGER = "192.0.2.50"


def reached_from(app: Litestar, peer: str) -> Litestar:
    """The app as a server hands it a connection from `peer`."""
    inner = app.asgi_handler

    async def connection(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            scope["client"] = (peer, 4711)
        await inner(scope, receive, send)

    app.asgi_handler = connection
    return app


@pytest.mark.parametrize(
    ("trusted", "peer", "first", "second", "same_client"),
    [
        # A trusted proxy's word is taken: two customers behind it.
        (PROXY, PROXY, "198.51.100.7", "198.51.100.8", False),
        (PROXY, PROXY, "198.51.100.7", "198.51.100.7:4711", True),
        (PROXY, PROXY, "2001:db8::7", "[2001:db8::8]:443", True),  # one /64
        # Anyone else's is not: both are the peer.
        (PROXY, STRANGER, "198.51.100.7", "198.51.100.8", True),
        (PROXY, STRANGER, None, "198.51.100.8", True),
        # An entry that is not an address: the request is the peer's, whatever else.
        (PROXY, PROXY, None, "unknown", True),
        (PROXY, PROXY, "made-up", "another-name", True),
        (PROXY, PROXY, None, "198.51.100.7, unknown", True),
        (PROXY, PROXY, None, "unknown, 198.51.100.7", True),
        (PROXY, PROXY, None, "198.51.100.7,,", True),
        (PROXY, PROXY, None, "198.51.100.7", False),
        # The right-most entry that is not a listed proxy: what a client prepends is
        # its own say, what the proxies appended is theirs.
        ("10.0.0.0/8", PROXY, "198.51.100.7", "203.0.113.66, 198.51.100.7, 10.0.0.3", True),
        ("10.0.0.0/8", PROXY, "198.51.100.7", "198.51.100.7, 10.0.0.3, 203.0.113.66", False),
        ("*", STRANGER, "198.51.100.7", "203.0.113.66, 198.51.100.7", True),
        ("*", STRANGER, "198.51.100.7", "203.0.113.66", False),
    ],
)
async def test_the_client_a_request_counts_as(
    migrated_sqlite: str,
    settings_from_env: Callable[..., Settings],
    trusted: str,
    peer: str,
    first: str | None,
    second: str,
    same_client: bool,
) -> None:
    settings = settings_from_env(
        DATABASE_URL=migrated_sqlite, TRUSTED_PROXIES=trusted, RATE_LIMIT_PER_MINUTE="1"
    )
    async with AsyncTestClient(app=reached_from(create_app(settings), peer)) as client:
        statuses = []
        for forwarded_for in (first, second):
            headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
            answer = await client.post(
                "/api/v1/auth/nonce",
                json={"walletAddress": Account.create().address},
                headers=headers,
            )
            statuses.append(answer.status_code)
    assert statuses == [200, 429 if same_client else 200]
