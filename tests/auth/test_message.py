"""The linear-time EIP-4361 parser, checked against the `siwe` package's ABNF engine."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from siwe import SiweMessage

from service.auth.message import (
    MalformedMessage,
    SignInMessage,
    format_sign_in_message,
    parse_sign_in_message,
)

ADDRESS = "0x52908400098527886E0F7030069857D2E4169EE7"
STATEMENT_CHARS = "abcXYZ019-._~:/?#[]@!$&'()*+,;= "
PCHARS = "abcXYZ019-._~!$&'()*+,;=:@"


def abnf_accepts(text: str) -> bool:
    try:
        SiweMessage.from_message(text)
    except Exception:
        return False
    return True


def timestamps() -> st.SearchStrategy[str]:
    moments = st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
    )
    return moments.map(lambda m: m.isoformat(timespec="milliseconds").replace("+00:00", "Z"))


uris = st.one_of(
    st.sampled_from(
        [
            "https://app.example",
            "http://localhost:8000/login?next=%2F",
            "https://u:p@[2001:db8::1]:443/a/b;c?d=e#f",
            "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
            "urn:isbn:0451450523",
            "did:pkh:eip155:1:" + ADDRESS,
        ]
    ),
    st.builds(
        lambda host, path: f"https://{host}/{path}",
        st.from_regex(r"[a-z0-9]{1,12}(\.[a-z]{2,6}){0,2}", fullmatch=True),
        st.text(PCHARS, max_size=20),
    ),
)


@st.composite
def messages(draw: st.DrawFn) -> str:
    fields = {
        "domain": draw(st.sampled_from(["localhost:8000", "app.example", "[::1]:3000"])),
        "address": ADDRESS,
        "uri": draw(uris),
        "version": "1",
        "chain_id": draw(st.integers(1, 2**53)),
        "nonce": draw(st.from_regex(r"[A-Za-z0-9]{8,32}", fullmatch=True)),
        "issued_at": draw(timestamps()),
    }
    if draw(st.booleans()):
        fields["scheme"] = draw(st.sampled_from(["https", "http"]))
    if draw(st.booleans()):
        fields["statement"] = draw(st.text(STATEMENT_CHARS, min_size=1, max_size=60))
    for name in ("expiration_time", "not_before"):
        if draw(st.booleans()):
            fields[name] = draw(timestamps())
    if draw(st.booleans()):
        fields["request_id"] = draw(st.text(PCHARS, max_size=20))
    if draw(st.booleans()):
        fields["resources"] = draw(st.lists(uris, max_size=3))
    return str(SiweMessage(**fields).prepare_message())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_every_message_the_siwe_package_writes_is_read_alike(text: str) -> None:
    parsed = parse_sign_in_message(text)
    reference = SiweMessage.from_message(text)
    assert parsed.domain == reference.domain
    assert parsed.address == reference.address
    assert parsed.uri == reference.uri
    assert parsed.chain_id == reference.chain_id
    assert parsed.nonce == reference.nonce
    assert parsed.statement == reference.statement
    assert parsed.scheme == reference.scheme
    assert parsed.request_id == reference.request_id
    assert list(parsed.resources or []) == list(reference.resources or [])
    assert parsed.issued_at == reference.issued_at._datetime


def test_an_empty_statement_and_an_impossible_moment_read_as_the_grammar_says() -> None:
    text = (
        "localhost:8000 wants you to sign in with your Ethereum account:\n"
        f"{ADDRESS}\n\n\n\nURI: http://localhost:8000\nVersion: 1\nChain ID: 1\n"
        "Nonce: abcdefgh1234\nIssued At: 2026-12-02T05:00:00Z"
    )
    assert parse_sign_in_message(text).statement == SiweMessage.from_message(text).statement == ""
    with pytest.raises(MalformedMessage):  # a moment before year 1 in UTC
        parse_sign_in_message(text.replace("2026-12-02T05:00:00Z", "0001-01-01T00:00:00+23:59"))


def test_the_services_own_message_is_written_as_the_siwe_package_writes_it() -> None:
    message = SignInMessage(
        domain="app.example",
        address=ADDRESS,
        uri="https://app.example",
        version="1",
        chain_id=31611,
        nonce="abcdefgh12345678",
        issued_at=datetime(2026, 12, 2, 5, 0, tzinfo=UTC),
        statement="Sign in to buy MUSD with onramp.",
        expiration_time=datetime(2026, 12, 2, 5, 5, tzinfo=UTC),
    )
    reference = SiweMessage(
        domain="app.example",
        address=ADDRESS,
        uri="https://app.example",
        version="1",
        chain_id=31611,
        nonce="abcdefgh12345678",
        issued_at="2026-12-02T05:00:00Z",
        statement="Sign in to buy MUSD with onramp.",
        expiration_time="2026-12-02T05:05:00Z",
    )
    assert format_sign_in_message(message) == reference.prepare_message()
    assert parse_sign_in_message(format_sign_in_message(message)) == message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages(), st.data())
def test_a_damaged_message_is_refused_exactly_when_the_grammar_refuses_it(
    text: str, data: st.DataObject
) -> None:
    at = data.draw(st.integers(0, len(text)))
    alphabet = "\n :/%@[]#?x0Zé"
    damaged = text[:at] + data.draw(st.text(alphabet, min_size=1, max_size=3)) + text[at + 1 :]
    try:
        parse_sign_in_message(damaged)
        ours = True
    except MalformedMessage:
        ours = False
    assert ours == abnf_accepts(damaged), repr(damaged)


@pytest.mark.parametrize(
    "hostile",
    [
        "URI: http://" + "a" * 1400 + "%",
        "URI: " + "a:" * 700,
        "URI: http://[" + "1:" * 600 + "]",
        "URI: http://x/" + "%41" * 450 + "%4",
        "URI: http://" + "@" * 1400,
    ],
)
def test_a_hostile_uri_costs_well_under_a_millisecond(hostile: str) -> None:
    text = format_sign_in_message(
        SignInMessage(
            domain="localhost:8000",
            address=ADDRESS,
            uri="http://localhost:8000",
            version="1",
            chain_id=1,
            nonce="abcdefgh12345678",
            issued_at=datetime(2026, 12, 2, tzinfo=UTC),
        )
    ).replace("URI: http://localhost:8000", hostile)

    def parse() -> float:
        started = time.perf_counter()
        with contextlib.suppress(MalformedMessage):
            parse_sign_in_message(text)
        return time.perf_counter() - started

    # The fastest of five: a busy machine can pause any one parse for milliseconds, but
    # backtracking that grows with the input would make every one of them slow.
    assert min(parse() for _ in range(5)) < 0.005
