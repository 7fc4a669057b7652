"""stripe-python's own log lines: formatted only when someone would read them."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import stripe

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
