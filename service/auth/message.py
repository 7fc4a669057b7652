"""Sign-in messages (EIP-4361, and Mezo's Bitcoin variant of it), parsed strictly and in
time linear in their length.

Hand-written because no maintained Python library is both strict and linear: the
`siwe` package parses with a general ABNF engine (about 7 ms a message, and crafted
messages under the size cap took up to a second), and its regular-expression mode
accepts what the grammar refuses. Here the message is split into its lines and each
field is checked against the grammar's own character classes, with expressions that
have no nested or overlapping repetition, so Python's matcher cannot backtrack. The
tests check this parser against the ABNF engine on generated messages.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from service.columns import parse_rfc3339, rfc3339

Family = Literal["ethereum", "bitcoin"]

# Mezo's "Sign In With Wallet" is EIP-4361 with a Bitcoin address and no Chain ID line
# (the address's prefix names its network), so one parser reads both families.
HEADERS: dict[str, Family] = {
    " wants you to sign in with your Ethereum account:": "ethereum",
    " wants you to sign in with your Bitcoin account:": "bitcoin",
}

# RFC 3986 character classes, each followed by pct-encoded alternatives only where the
# grammar allows them; '%' is in no class, so the alternation never overlaps.
_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_PCHAR = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT})"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_USERINFO = re.compile(rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT})*")
_REG_NAME = re.compile(rf"(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT})*")
_PORT = re.compile(r"[0-9]*")
_SEGMENT = re.compile(rf"{_PCHAR}*")
_QUERY = re.compile(rf"(?:{_PCHAR}|[/?])*")
_IP_FUTURE = re.compile(rf"[vV][0-9A-Fa-f]+\.[{_UNRESERVED}{_SUB_DELIMS}:]+")
_ADDRESSES: dict[Family, re.Pattern[str]] = {
    "ethereum": re.compile(r"0x[0-9a-fA-F]{40}"),
    # Base58 or bech32 characters; the address itself is checked by the Bitcoin rules.
    "bitcoin": re.compile(r"[0-9A-Za-z]{25,90}"),
}
_STATEMENT = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;= ]*")
_NONCE = re.compile(r"[A-Za-z0-9]{8,}")
_CHAIN_ID = re.compile(r"[0-9]+")
_REQUEST_ID = re.compile(rf"{_PCHAR}*")


@dataclass(frozen=True)
class SignInMessage:
    """The fields of an EIP-4361 message, as the wallet signed them."""

    domain: str
    address: str
    uri: str
    version: str
    chain_id: int | None  # None in, and only in, a Bitcoin message
    nonce: str
    issued_at: datetime
    family: Family = "ethereum"
    scheme: str | None = None
    statement: str | None = None
    expiration_time: datetime | None = None
    not_before: datetime | None = None
    request_id: str | None = None
    resources: tuple[str, ...] | None = None


class MalformedMessage(ValueError):
    """Not a message of the EIP-4361 grammar."""


def parse_sign_in_message(text: str) -> SignInMessage:
    lines = text.split("\n")
    origin, family = _header(_take(lines, 0))
    scheme, domain = _origin(origin)
    address = _matching(_ADDRESSES[family], _take(lines, 1), "address")
    _expect_blank(lines, 2)
    statement = None
    at = 3
    if _take(lines, 3) != "":
        statement = _matching(_STATEMENT, lines[3], "statement")
        at = 4
    elif _take(lines, 4) == "":  # an empty statement line, as siwe-js writes `""`
        statement, at = "", 4
    _expect_blank(lines, at)
    uri = _uri(_field(lines, at + 1, "URI"))
    version = _field(lines, at + 2, "Version")
    if version != "1":
        raise MalformedMessage("version must be 1")
    chain_id = None
    at += 3
    if family == "ethereum":
        chain_id = int(_matching(_CHAIN_ID, _field(lines, at, "Chain ID"), "chain id"))
        at += 1
    nonce = _matching(_NONCE, _field(lines, at, "Nonce"), "nonce")
    issued_at = _date_time(_field(lines, at + 1, "Issued At"))
    at += 2
    optional: dict[str, str] = {}
    for name in ("Expiration Time", "Not Before", "Request ID"):
        if at < len(lines) and lines[at].startswith(f"{name}: "):
            optional[name] = lines[at][len(name) + 2 :]
            at += 1
    resources = None
    if at < len(lines) and lines[at] == "Resources:":
        resources = tuple(_resource(line) for line in lines[at + 1 :])
        at = len(lines)
    if at != len(lines):
        raise MalformedMessage(f"unexpected line {at + 1}")
    request_id = optional.get("Request ID")
    return SignInMessage(
        domain=domain,
        address=address,
        uri=uri,
        version=version,
        chain_id=chain_id,
        nonce=nonce,
        issued_at=issued_at,
        family=family,
        scheme=scheme,
        statement=statement,
        expiration_time=_optional_date_time(optional.get("Expiration Time")),
        not_before=_optional_date_time(optional.get("Not Before")),
        request_id=None if request_id is None else _matching(_REQUEST_ID, request_id, "request id"),
        resources=resources,
    )


def format_sign_in_message(message: SignInMessage) -> str:
    """The text a wallet signs for `message` (timestamps to the second, in UTC)."""
    origin = f"{message.scheme}://{message.domain}" if message.scheme else message.domain
    header = next(text for text, family in HEADERS.items() if family == message.family)
    lines = [origin + header, message.address, ""]
    if message.statement is not None:
        lines.append(message.statement)
    lines += ["", f"URI: {message.uri}", f"Version: {message.version}"]
    if message.chain_id is not None:
        lines.append(f"Chain ID: {message.chain_id}")
    lines += [f"Nonce: {message.nonce}", f"Issued At: {rfc3339(message.issued_at)}"]
    if message.expiration_time is not None:
        lines.append(f"Expiration Time: {rfc3339(message.expiration_time)}")
    if message.not_before is not None:
        lines.append(f"Not Before: {rfc3339(message.not_before)}")
    if message.request_id is not None:
        lines.append(f"Request ID: {message.request_id}")
    if message.resources is not None:
        lines += ["Resources:", *(f"- {resource}" for resource in message.resources)]
    return "\n".join(lines)


def _take(lines: list[str], index: int) -> str:
    if index >= len(lines):
        raise MalformedMessage("the message ends too early")
    return lines[index]


def _expect_blank(lines: list[str], index: int) -> None:
    if _take(lines, index) != "":
        raise MalformedMessage(f"line {index + 1} must be empty")


def _field(lines: list[str], index: int, name: str) -> str:
    line = _take(lines, index)
    if not line.startswith(f"{name}: "):
        raise MalformedMessage(f"line {index + 1} must be '{name}: …'")
    return line[len(name) + 2 :]


def _header(line: str) -> tuple[str, Family]:
    """The origin the first line names, and the family of account it asks for."""
    for suffix, family in HEADERS.items():
        if line.endswith(suffix):
            return line[: -len(suffix)], family
    raise MalformedMessage("the first line is not a sign-in request")


def _matching(pattern: re.Pattern[str], value: str, what: str) -> str:
    if pattern.fullmatch(value) is None:
        raise MalformedMessage(f"invalid {what}")
    return value


def _origin(origin: str) -> tuple[str | None, str]:
    scheme = None
    if "://" in origin:
        scheme, origin = origin.split("://", 1)
        _matching(_SCHEME, scheme, "scheme")
    if not _is_authority(origin):
        raise MalformedMessage("invalid domain")
    return scheme, origin


def _is_authority(authority: str) -> bool:
    """RFC 3986 `authority`: [ userinfo "@" ] host [ ":" port ]."""
    userinfo, at, host_port = authority.rpartition("@")
    if at and _USERINFO.fullmatch(userinfo) is None:
        return False
    if host_port.startswith("["):
        literal, bracket, port = host_port[1:].partition("]")
        if not bracket or not _is_ip_literal(literal):
            return False
        return port == "" or (port.startswith(":") and _PORT.fullmatch(port[1:]) is not None)
    host, _, port = host_port.partition(":")
    return _REG_NAME.fullmatch(host) is not None and _PORT.fullmatch(port) is not None


def _is_ip_literal(literal: str) -> bool:
    if _IP_FUTURE.fullmatch(literal):
        return True
    try:
        ipaddress.IPv6Address(literal)
    except ValueError:
        return False
    return "%" not in literal  # a zone id is not part of RFC 3986's IPv6address


def _uri(uri: str) -> str:
    """RFC 3986 `URI`: scheme ":" hier-part [ "?" query ] [ "#" fragment ]."""
    scheme, colon, rest = uri.partition(":")
    if not colon or _SCHEME.fullmatch(scheme) is None:
        raise MalformedMessage("invalid URI")
    rest, hash_, fragment = rest.partition("#")
    rest, question, query = rest.partition("?")
    if (hash_ and _QUERY.fullmatch(fragment) is None) or (
        question and _QUERY.fullmatch(query) is None
    ):
        raise MalformedMessage("invalid URI")
    if rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        if not _is_authority(authority) or not _is_path(slash + path):
            raise MalformedMessage("invalid URI")
    elif not _is_path(rest):
        raise MalformedMessage("invalid URI")
    return uri


def _is_path(path: str) -> bool:
    return all(_SEGMENT.fullmatch(segment) is not None for segment in path.split("/"))


def _resource(line: str) -> str:
    if not line.startswith("- "):
        raise MalformedMessage("a resource line must be '- URI'")
    return _uri(line[2:])


def _date_time(value: str) -> datetime:
    try:
        return parse_rfc3339(value)
    except ValueError as error:
        raise MalformedMessage("invalid date-time") from error


def _optional_date_time(value: str | None) -> datetime | None:
    return None if value is None else _date_time(value)
