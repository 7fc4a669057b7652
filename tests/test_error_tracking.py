"""Unhandled errors reach Sentry (SENTRY_DSN) through sentry-sdk, from a real `onramp`
process to a local stand-in for Sentry's ingest: one event per error, tagged with the
request id, the environment and the release, and not one secret in what was sent.
A command's expected failures (configuration, a database out of reach, a refusal the
service chose) send nothing."""

from __future__ import annotations

import gzip
import json
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from service import migrations
from service.release import RELEASE
from service.settings import ConfigurationError, DatabaseSettings, Settings
from tests.conftest import POSTGRES_ADMIN_URL
from tests.onramp.conftest import JWT_SECRET
from tests.support.environment import BASE_ENV
from tests.support.processes import OnrampProcess, bare_env, run_onramp, service_env
from tests.support.webhooks import WEBHOOK_SECRET, encode, onramp_event, sign


@dataclass
class Ingest:
    """What sentry-sdk posted to /api/<project>/envelope/, decompressed."""

    dsn: str = ""
    envelopes: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def raw(self) -> bytes:
        with self.lock:
            return b"\n".join(self.envelopes)

    def events(self) -> list[dict[str, Any]]:
        """The error events (not sessions or client reports) of every envelope."""
        found = []
        with self.lock:
            envelopes = list(self.envelopes)
        for envelope in envelopes:
            lines = envelope.split(b"\n")
            for header, payload in zip(lines[1::2], lines[2::2], strict=False):
                if json.loads(header).get("type") == "event":
                    found.append(json.loads(payload))
        return found

    def wait_for_events(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(events := self.events()) < count:
            assert time.monotonic() < deadline, f"{len(events)} of {count} events came"
            time.sleep(0.05)
        return events


@contextmanager
def sentry_ingest() -> Iterator[Ingest]:
    ingest = Ingest()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            if self.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            assert self.path.startswith("/api/1/envelope/"), self.path
            with ingest.lock:
                ingest.envelopes.append(body)
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    ingest.dsn = f"http://publickey@127.0.0.1:{server.server_address[1]}/1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ingest
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def database_without_webhook_events() -> Iterator[str]:
    """A database of its own, migrated, whose webhook table is then dropped underneath
    the service: storing an event fails as no request should."""
    name = f"onramp_sentry_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    try:
        migrations.upgrade(DatabaseSettings(DATABASE_URL=url))
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("DROP TABLE webhook_events CASCADE")
        yield url
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_route_failing_unexpectedly_sends_one_event_with_its_request_id_and_no_secret(
    tmp_path: Path, database_without_webhook_events: str
) -> None:
    event = onramp_event("cos_" + secrets.token_hex(8), "fulfillment_complete")
    client_secret = event["data"]["object"]["client_secret"]
    body = encode(event)
    signature = sign(body)
    bearer = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIweGFiYyJ9." + secrets.token_urlsafe(32)
    request_id = "req-" + secrets.token_hex(8)
    ticket = f"est_{secrets.token_urlsafe(24)}"
    with sentry_ingest() as ingest:
        server = OnrampProcess(
            tmp_path,
            "serve",
            "--no-worker",
            **service_env(database_without_webhook_events, SENTRY_DSN=ingest.dsn),
        )
        server.start()
        try:
            answer = httpx.post(
                f"{server.url}/api/v1/webhooks/stripe?ticket={ticket}",
                content=body,
                headers={
                    "content-type": "application/json",
                    "stripe-signature": signature,
                    "authorization": f"Bearer {bearer}",
                    "x-request-id": request_id,
                },
            )
            assert answer.status_code == 500, answer.text
            assert answer.headers["x-request-id"] == request_id
            ingest.wait_for_events(1)
        finally:
            server.stop()
        # Everything the process had to send was sent before it exited.
        events = ingest.events()
        raw = ingest.raw()
    assert len(events) == 1, events
    (sent,) = events
    assert sent["tags"]["request_id"] == request_id
    assert sent["tags"]["component"] == "api"
    assert sent["environment"] == "development"
    assert sent["release"] == RELEASE
    exception = sent["exception"]["values"][-1]
    assert "webhook_events" in exception["value"], exception
    secret_values = (bearer, client_secret, signature.split("v1=")[1], ticket)
    for secret in (*secret_values, WEBHOOK_SECRET, JWT_SECRET):
        assert secret.encode() not in raw, secret
    # The errors the request logged on its way out are the event's breadcrumbs.
    crumbs = {crumb.get("message") for crumb in sent["breadcrumbs"]["values"]}
    assert {"webhook_failed", "webhook_failure_not_recorded"} <= crumbs


def with_password(url: str, password: str) -> str:
    """The same database, reached with a password (the suite's PostgreSQL trusts local
    connections, and ignores it): a secret the command holds, to look for in what it sent."""
    return make_url(url).set(password=password).render_as_string(hide_password=False)


def test_a_command_on_a_schema_it_does_not_expect_says_one_line_and_sends_one_event(
    tmp_path: Path, database_without_webhook_events: str
) -> None:
    password = "pw-" + secrets.token_hex(12)
    result, events, raw = command_sends(
        tmp_path,
        with_password(database_without_webhook_events, password),
        "webhooks",
        "replay",
        "--since",
        "2026-01-01",
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == ['onramp: database error: relation "webhook_events" does not exist'], lines
    assert len(events) == 1, events
    (sent,) = events
    exception = sent["exception"]["values"][-1]
    assert exception["type"] == "UndefinedTable", exception
    # The operator's line, not the statement psycopg quotes after it (`LINE 1: SELECT …`).
    assert exception["value"] == 'relation "webhook_events" does not exist', exception
    assert b"SELECT" not in raw
    assert sent["tags"]["component"] == "onramp webhooks replay"
    assert "request_id" not in sent["tags"]
    assert sent["environment"] == "development"
    assert sent["release"] == RELEASE
    for secret in (password, JWT_SECRET, WEBHOOK_SECRET):
        assert secret.encode() not in raw, secret
        assert secret not in result.stdout + result.stderr


def command_sends(
    cwd: Path, database_url: str, *args: str
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]], bytes]:
    """`onramp *args` run to its end with Sentry's ingest stood in for: its result, the
    events it sent and every byte sent (the process has exited, so what it had to send
    was sent before it did)."""
    with sentry_ingest() as ingest:
        result = run_onramp(*args, cwd=cwd, **service_env(database_url, SENTRY_DSN=ingest.dsn))
        return result, ingest.events(), ingest.raw()


@pytest.fixture
def endpoint_written_by_hand(database_without_webhook_events: str) -> tuple[str, str]:
    """A merchant endpoint inserted by hand into a table whose `created_at` was made
    nullable, and left without one: a row no code path of the service writes. The
    database and the endpoint's signing secret."""
    secret = "whsec_" + secrets.token_hex(24)
    with psycopg.connect(database_without_webhook_events, autocommit=True) as connection:
        connection.execute(
            "ALTER TABLE merchant_webhook_endpoints ALTER COLUMN created_at DROP NOT NULL"
        )
        connection.execute(
            "INSERT INTO merchant_webhook_endpoints (id, url, status, secret)"
            " VALUES ('we_byhand', 'https://merchant.example/hooks', 'enabled', %s)",
            (secret,),
        )
    return database_without_webhook_events, secret


def test_a_command_dying_of_an_error_sends_one_event_with_no_secret(
    tmp_path: Path, endpoint_written_by_hand: tuple[str, str]
) -> None:
    database, endpoint_secret = endpoint_written_by_hand
    password = "pw-" + secrets.token_hex(12)
    result, events, raw = command_sends(
        tmp_path, with_password(database, password), "endpoints", "list"
    )
    # A bug keeps its traceback on stderr (service/commands.py), ending in the error.
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("AttributeError: 'NoneType' object has no attribute"), last
    assert len(events) == 1, events
    (sent,) = events
    exception = sent["exception"]["values"][-1]
    assert exception["type"] == "AttributeError", exception
    assert sent["tags"]["component"] == "onramp endpoints list"
    assert sent["environment"] == "development"
    assert sent["release"] == RELEASE
    for secret in (password, JWT_SECRET, WEBHOOK_SECRET, endpoint_secret):
        assert secret.encode() not in raw, secret


def test_a_command_failing_as_expected_sends_nothing(tmp_path: Path) -> None:
    password = "pw-" + secrets.token_hex(12)
    unreachable = f"postgresql://onramp:{password}@127.0.0.1:1/onramp"
    with sentry_ingest() as ingest:
        env = {**BASE_ENV, "SENTRY_DSN": ingest.dsn}
        expected = [
            # A setting that is not one: exit 2, before anything starts.
            (run_onramp("migrate", cwd=tmp_path, **env, PORT="eighty"), 2),
            # The database out of reach, through Alembic's engine and through the pool.
            (run_onramp("migrate", cwd=tmp_path, **env, DATABASE_URL=unreachable), 1),
            (
                run_onramp(
                    "sessions",
                    "list",
                    cwd=tmp_path,
                    **env,
                    DATABASE_URL=unreachable,
                    DATABASE_POOL_TIMEOUT_SECONDS="1",
                ),
                1,
            ),
            # A revision that does not exist.
            (run_onramp("migrate", "--revision", "bogus", cwd=tmp_path, **env), 1),
        ]
        # A refusal the service chose, on a database that works (SQLite, migrated).
        assert run_onramp("migrate", cwd=tmp_path, **env).returncode == 0
        expected.append((run_onramp("endpoints", "remove", "we_none", cwd=tmp_path, **env), 1))
        events = ingest.events()
        raw = ingest.raw()
    for result, code in expected:
        assert result.returncode == code, result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith("onramp: "), result.stderr
        assert "Traceback" not in result.stderr
    assert events == [], events
    assert password.encode() not in raw


# What the delivery worker does with a round that fails of a bug (service/delivery/worker.py).
WORKER_ROUND = """
import structlog
from service import error_tracking
from service.logs import configure_logging
from service.settings import Settings

settings = Settings.from_env()
configure_logging("info", "json")
error_tracking.start(settings, "onramp worker")
try:
    raise RuntimeError("a round failed")
except Exception:
    structlog.get_logger("onramp.delivery").exception("delivery_round_failed", round=7)
"""


def test_an_error_the_worker_logs_is_sent_once(tmp_path: Path) -> None:
    with sentry_ingest() as ingest:
        result = subprocess.run(
            [sys.executable, "-c", WORKER_ROUND],
            env=bare_env(**BASE_ENV, SENTRY_DSN=ingest.dsn),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        events = ingest.events()
    assert len(events) == 1, events
    (sent,) = events
    assert sent["logger"] == "onramp.delivery"
    assert sent["logentry"]["message"] == "delivery_round_failed"
    assert sent["extra"]["round"] == 7
    assert sent["exception"]["values"][-1]["value"] == "a round failed"
    assert sent["tags"]["component"] == "onramp worker"
    assert "request_id" not in sent["tags"]


def test_without_a_dsn_sentry_sdk_is_not_even_imported(tmp_path: Path) -> None:
    script = (
        "import sys; from service.app import create_app; from service.settings import Settings;"
        " create_app(Settings.from_env()); print('sentry_sdk' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=bare_env(**BASE_ENV),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.strip() == "False", result.stderr


def test_a_dsn_that_is_not_one_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="SENTRY_DSN"):
        Settings.from_env({**BASE_ENV, "SENTRY_DSN": "https://sentry.example/1"})
