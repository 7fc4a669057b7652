"""Where an endpoint may point, against server-side request forgery.

Deployed (production or staging), an endpoint must be `https://` and every address its
host resolves to must be public. The check runs at registration and again at each
attempt, and the attempt then connects to the very address that was checked (the URL's
host is kept for the `Host` header and TLS's SNI and certificate check), so a name that
resolves elsewhere between the check and the connection (DNS rebinding) changes nothing.
`classify` is pure; `resolve` is the one boundary that asks DNS.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
METADATA = ipaddress.ip_address("169.254.169.254")
URL_LIMIT = 2048


class EndpointRefused(ValueError):
    """The URL may not be an endpoint here; the message says why, for the operator."""


def classify(address: IpAddress) -> str | None:
    """Why an address is not a public one (`loopback`, `private`, ...), or None if it is.
    An IPv6 address that carries an IPv4 one (mapped, 6to4, Teredo) is judged by it."""
    if isinstance(address, ipaddress.IPv6Address):
        carried = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if carried is not None:
            return classify(carried)
    checks = (
        ("metadata", address == METADATA),
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link_local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("not_global", not address.is_global),
    )
    return next((name for name, holds in checks if holds), None)


@dataclass(frozen=True)
class Target:
    """An endpoint URL taken apart: what to connect to, and what to call it."""

    scheme: str
    host: str
    port: int


def target_of(url: str, deployed: bool) -> Target:
    """The URL's scheme, host and port, or EndpointRefused: an absolute http(s) URL
    without credentials (they would reach logs), https only when deployed."""
    if len(url) > URL_LIMIT:
        raise EndpointRefused(f"must be at most {URL_LIMIT} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise EndpointRefused("is not a URL") from None
    allowed = ("https",) if deployed else ("https", "http")
    if parts.scheme not in allowed:
        raise EndpointRefused(f"must be {' or '.join(f'{s}://' for s in allowed)}")
    if not parts.hostname:
        raise EndpointRefused("names no host")
    if parts.username is not None or parts.password is not None:
        raise EndpointRefused("must not carry credentials")
    default = 443 if parts.scheme == "https" else 80
    return Target(parts.scheme, parts.hostname, port or default)


async def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (an address resolves to itself)."""
    found = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in found))


async def checked_address(
    target: Target, deployed: bool, resolver: Resolver = resolve
) -> IpAddress:
    """The address to connect to: the first the host resolves to, when deployed only if
    every one of them is public (a name with one private address among public ones is
    refused: which one a client picks is not ours to choose)."""
    try:
        found = [
            ipaddress.ip_address(a.split("%", 1)[0])
            for a in await resolver(target.host, target.port)
        ]
    except (OSError, UnicodeError, ValueError) as error:
        raise EndpointRefused(f"its host does not resolve ({type(error).__name__})") from None
    if not found:
        raise EndpointRefused("its host does not resolve")
    if deployed:
        for address in found:
            reason = classify(address)
            if reason is not None:
                raise EndpointRefused(f"resolves to a non-public address ({reason})")
    return found[0]
