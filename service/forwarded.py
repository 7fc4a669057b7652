"""Who the client is behind a proxy: X-Forwarded-For, believed only from TRUSTED_PROXIES.

Hand-written rather than uvicorn's ProxyHeadersMiddleware (0.54), which takes an entry
that is not an IP address (`unknown`, `evil`, anything a client prepends that a proxy
kept) as the client's address, giving a client as many rate-limit budgets as it can
invent names, and which with `*` takes the left-most entry, the one a client writes
itself. Here:
- the header counts only when the peer is a trusted proxy (`*`: whoever connects,
  for platforms whose proxy is the only way in);
- the client is the right-most entry that is not a listed proxy: each proxy appends
  the address it saw, so everything left of that is the client's own say;
- an entry that is not an IP address (with or without a port) makes the request count
  as the peer's, as if no header had come.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class TrustedProxies:
    """TRUSTED_PROXIES: addresses and networks, or `*` for any peer."""

    def __init__(self, entries: Sequence[str]) -> None:
        self.any_peer = "*" in entries
        self.networks = tuple(
            ipaddress.ip_network(entry, strict=False) for entry in entries if entry != "*"
        )

    def listed(self, address: Address) -> bool:
        return any(address in network for network in self.networks)

    def trust(self, peer: str | None) -> bool:
        """Whether the peer's X-Forwarded-* headers are believed."""
        if self.any_peer:
            return True
        address = parse_address(peer or "")
        return address is not None and self.listed(address)

    def client(self, forwarded_for: Sequence[str]) -> Address | None:
        """The client a trusted peer forwards for, or None when the request counts as
        the peer's (no header, or an entry that is not an address)."""
        hops = [parse_address(hop) for value in forwarded_for for hop in value.split(",")]
        known = [address for address in hops if address is not None]
        if not known or len(known) < len(hops):
            return None
        outside = [address for address in known if not self.listed(address)]
        # Every hop a listed proxy: the first of them is as far back as anyone can see.
        return outside[-1] if outside else known[0]


def parse_address(entry: str) -> Address | None:
    """`203.0.113.7`, `203.0.113.7:4711`, `2001:db8::1` or `[2001:db8::1]:4711`."""
    entry = entry.strip()
    if entry.startswith("["):
        entry = entry[1:].partition("]")[0]
    elif entry.count(":") == 1:
        entry = entry.partition(":")[0]
    try:
        return ipaddress.ip_address(entry)
    except ValueError:
        return None


class ForwardedClient:
    """The ASGI layer that puts the forwarded client (and scheme) into the scope, where
    everything that asks for the client's address (`ratelimit.client_ip`) reads it."""

    def __init__(self, app: ASGIApp, trusted: Sequence[str]) -> None:
        self.app = app
        self.proxies = TrustedProxies(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in (ScopeType.HTTP, ScopeType.WEBSOCKET):
            self._rewrite(scope)
        await self.app(scope, receive, send)

    def _rewrite(self, scope: Scope) -> None:
        peer = scope.get("client")
        if not self.proxies.trust(peer[0] if peer else None):
            return
        forwarded_for, proto = [], None
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                forwarded_for.append(value.decode("latin-1"))
            elif name == b"x-forwarded-proto":
                proto = value.decode("latin-1").strip().lower()
        if proto in ("http", "https"):
            websocket = scope["type"] == ScopeType.WEBSOCKET
            scope["scheme"] = proto.replace("http", "ws") if websocket else proto
        client = self.proxies.client(forwarded_for)
        if client is not None:
            scope["client"] = (str(client), 0)
