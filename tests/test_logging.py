"""No secret reaches the log output, however it is logged."""

from __future__ import annotations

import io
import json
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
import structlog

from service.logs import REDACTED, access_line, configure_logging, redact_secrets, scrub
from tests.onramp.conftest import JWT_SECRET
from tests.support import log_scan, webhooks

CLIENT_SECRET = "cos_1QabcDEF_secret_k3yMaterial9"
WEBHOOK_SECRET = "whsec_Zm9vYmFyYmF6cXV4"
STRIPE_KEY = "sk_test_51Habcdefghijklmnop"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIweGFiYyJ9.c2lnbmF0dXJlLWJ5dGVz"
SECRETS = (CLIENT_SECRET, WEBHOOK_SECRET, STRIPE_KEY, JWT, "k3yMaterial9")


def logged_output(log_format: str) -> str:
    stream = io.StringIO()
    configure_logging("debug", log_format, stream=stream)
    log = structlog.get_logger("test")
    log.info("session created", clientSecret=CLIENT_SECRET, wallet="0xabc")
    log.info("calling stripe", api_key=STRIPE_KEY, headers={"Authorization": f"Bearer {JWT}"})
    log.info(f"configured with {WEBHOOK_SECRET} and {STRIPE_KEY}")
    log.warning("nested", body={"data": [{"client_secret": CLIENT_SECRET}]})
    log.info("header", raw=f"authorization: Bearer {JWT}")
    try:
        raise RuntimeError(f"stripe refused {STRIPE_KEY} for {CLIENT_SECRET}")
    except RuntimeError:
        log.exception("failed")
    logging.getLogger("uvicorn.error").error("stdlib record with %s", WEBHOOK_SECRET)
    return stream.getvalue()


def test_json_output_holds_no_secret_in_keys_values_messages_or_tracebacks() -> None:
    output = logged_output("json")
    lines = [json.loads(line) for line in output.splitlines()]
    assert len(lines) == 7
    for secret in SECRETS:
        assert secret not in output
    assert lines[0]["clientSecret"] == REDACTED
    assert lines[0]["wallet"] == "0xabc"
    assert "RuntimeError" in lines[5]["exception"]
    assert lines[6]["logger"] == "uvicorn.error"


def test_console_output_holds_no_secret_either() -> None:
    output = logged_output("console")
    assert "session created" in output
    for secret in SECRETS:
        assert secret not in output


def test_database_passwords_in_urls_are_hidden() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    structlog.get_logger().info("connecting", url="postgresql://app:hunter2@db:5432/onramp")
    assert "hunter2" not in stream.getvalue()
    assert "db:5432/onramp" in stream.getvalue()


def test_the_runs_secret_scan_knows_each_kind_of_secret() -> None:
    """The suite's own scan of all log output (tests/support/log_scan.py) must see what
    it looks for, and nothing in ordinary log lines."""
    leaks = [
        f"key={JWT_SECRET}",
        f"signed with {webhooks.WEBHOOK_SECRET}",
        "Authorization: sk_live_51Habcdefghijklmnop",
        "client_secret=cos_1Abc_secret_xyz123",
        "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIweDEyMyJ9.c2lnbmF0dXJlLXZhbHVl",
    ]
    for line in leaks:
        assert log_scan.find_secrets(line), line
    ordinary = (
        '{"event": "session_created", "session_id": "ors_01M8A", "stripe_session_id": "cos_9NEr8"}'
    )
    assert log_scan.find_secrets(ordinary) == []


def test_an_event_is_passed_through_unscrubbed_only_when_scrubbing_would_not_change_it() -> None:
    clean = {"event": "request", "method": "GET", "path": "/api/v1/onramp/sessions", "status": 200}
    assert redact_secrets(None, "info", clean) is clean
    secret_events: list[dict[str, object]] = [
        {"event": "request", "path": "/x?key=sk_test_abc"},
        {"event": "request", "token": "harmless-looking"},
        {"event": "request", "nested": {"client_secret": "cos_1_secret_2"}},
        {"event": "request", "raw": b"Bearer abc.def"},
    ]
    for event in secret_events:
        assert redact_secrets(None, "info", event) == scrub(event) != event


def test_an_access_line_is_written_at_info_in_utc_and_not_below_the_level() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    structlog.contextvars.bind_contextvars(request_id="r-1")
    try:
        before = datetime.now(UTC)
        access_line({"method": "GET", "path": f"/x/{CLIENT_SECRET}", "status": 200})
        after = datetime.now(UTC)
        configure_logging("warning", "json", stream=stream)
        access_line({"method": "GET", "path": "/y", "status": 200})
    finally:
        structlog.contextvars.clear_contextvars()
    (line,) = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["event"] == "request"
    assert line["level"] == "info"
    assert line["logger"] == "onramp.access"
    assert line["request_id"] == "r-1"
    assert line["path"] == f"/x/{REDACTED}"
    assert line["timestamp"].endswith("Z")
    stamped = datetime.fromisoformat(line["timestamp"].removesuffix("Z") + "+00:00")
    assert before - timedelta(microseconds=1) <= stamped <= after


def test_timestamps_follow_the_clock_across_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    log = structlog.get_logger("test")
    for now in (1_796_666_399.999_5, 1_796_666_400.25, 1_796_666_399.5):
        monkeypatch.setattr(time, "time", lambda now=now: now)
        log.info("tick")
    stamps = [json.loads(line)["timestamp"] for line in stream.getvalue().splitlines()]
    assert stamps == [
        "2026-12-07T17:59:59.999500Z",
        "2026-12-07T18:00:00.250000Z",
        "2026-12-07T17:59:59.500000Z",
    ]
