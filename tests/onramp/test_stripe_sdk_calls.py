"""stripe-python as the service drives it: its log lines formatted only when someone would
read them, its form encoding exactly urllib's."""

from __future__ import annotations

import logging
import urllib.parse
from decimal import Decimal
from typing import Any

import pytest
import stripe
from hypothesis import given
from hypothesis import strategies as st

from service.onramp import stripe_client

REQUESTOR: Any = stripe._api_requestor
UTIL: Any = stripe._util


def test_the_requestor_writes_its_lines_when_stripes_logger_listens(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert REQUESTOR.log_info is not UTIL.log_info  # stripe_client's, imported above
    with caplog.at_level(logging.DEBUG, logger="stripe"):
        REQUESTOR.log_info("Request to Stripe api", method="post", url="https://x/v1")
        REQUESTOR.log_debug("API response body", body=b'{"id": "cos_1"}')
    assert "message='Request to Stripe api' method=post url=https://x/v1" in caplog.text
    assert 'body=\'{"id": "cos_1"}\'' in caplog.text


def test_nothing_is_formatted_while_nobody_listens(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def formatted(_: Any) -> str:
        raise AssertionError("a line nobody reads was formatted")

    monkeypatch.setattr(UTIL, "logfmt", formatted)
    monkeypatch.setattr(stripe, "log", None)
    monkeypatch.setattr(UTIL, "STRIPE_LOG", None)
    with caplog.at_level(logging.WARNING, logger="stripe"):
        REQUESTOR.log_info("Request to Stripe api", method="post", url="https://x/v1")
        REQUESTOR.log_debug("API response body", body=b"{}")
    assert stripe_client.SESSIONS_PATH  # the module that installs the check is loaded


def test_the_requestors_form_encoding_is_urllibs_character_for_character() -> None:
    pairs: list[tuple[Any, Any]] = [
        ("wallet_addresses[ethereum]", "0x52908400098527886E0F7030069857D2E4169EE7"),
        ("metadata[onramp_session_id]", "ors_01ABC-def.~"),
        ("source_amount", "100.00"),
        ("customer_ip_address", "2001:db8::1"),
        ("note", "a b+c&d=e/f?g#h%i"),
        ("unicode", "Zürich €"),
        ("empty", ""),
        ("count", 3),
        ("amount", Decimal("1.50")),
        (b"raw[name]", b"raw value\xff"),
        (7, True),
    ]
    assert REQUESTOR.urlencode is not urllib.parse.urlencode
    assert REQUESTOR.urlencode(pairs) == urllib.parse.urlencode(pairs)
    assert REQUESTOR.urlencode([]) == ""


@given(st.lists(st.tuples(st.text(), st.one_of(st.text(), st.integers(), st.binary()))))
def test_any_pairs_encode_as_urllib_encodes_them(pairs: list[tuple[str, object]]) -> None:
    assert REQUESTOR.urlencode(pairs) == urllib.parse.urlencode(pairs)
