"""Where a host name or address leads, in every spelling a resolver accepts.

A check that compares a host with `localhost` and `127.0.0.1` is passed by
`127.1`, `2130706433`, `0x7f000001`, `0177.0.0.1`, `localhost.` or
`::ffff:127.0.0.1`, which all reach this machine. Addresses are read here the way the
C library reads them (`inet_aton` takes the legacy short, integer, hex and octal
forms that `ipaddress` refuses), after IPv6 forms and a trailing dot are handled.
"""

from __future__ import annotations

import ipaddress
import socket

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
# Names that only resolve inside a private network: Railway's and other platforms'
# private DNS, mDNS, home and Kubernetes networks.
_PRIVATE_SUFFIXES = (".internal", ".local", ".localhost", ".lan", ".home.arpa")


def address_of(host: str) -> Address | None:
    """The IP address `host` spells, in any accepted form; None for a name."""
    host = _bare(host)
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):  # not an address (ValueError: a NUL in it)
        return None


def is_local_host(host: str) -> bool:
    """Unset, or a name or address that only reaches this machine."""
    name = _bare(host)
    if not name or name in _LOCAL_NAMES or name.endswith(".localhost"):
        return True
    address = _unmapped(address_of(name))
    return address is not None and (address.is_loopback or address.is_unspecified)


def is_private_host(host: str) -> bool:
    """This machine, a private or link-local address, or a name only a private
    network resolves (one label, like `postgres`, or a private suffix); a path is a
    local socket."""
    name = _bare(host)
    if is_local_host(name) or name.startswith("/"):
        return True
    address = _unmapped(address_of(name))
    if address is not None:
        return address.is_private or address.is_link_local or address.is_loopback
    return "." not in name or name.endswith(_PRIVATE_SUFFIXES)


def _bare(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host.removesuffix(".")


def _unmapped(address: Address | None) -> Address | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
