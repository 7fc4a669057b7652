"""The restore runbook, tried for real: a PostgreSQL dump taken while sessions are being
bought, the database restored from it, then `sessions import` and `reconcile`."""

from __future__ import annotations

import json
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from service import migrations
from service.settings import DatabaseSettings
from tests.conftest import POSTGRES_ADMIN_URL
from tests.onramp.conftest import new_wallet, token_for
from tests.onramp.test_replay import cli_env
from tests.support.processes import OnrampProcess, run_onramp, service_env
from tests.support.stripe import RunningStripe
from tests.support.webhooks import WEBHOOK_SECRET


@pytest.fixture
def own_database() -> Iterator[tuple[str, str]]:
    """A database of its own (name, url), which the test may drop and restore."""
    name = f"onramp_restore_{secrets.token_hex(4)}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    try:
        yield name, url
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def query(url: str, statement: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as connection:
        return connection.execute(statement).fetchall()


class Buyers:
    """Wallets buying without pause, their sessions moved on at Stripe (webhooks
    delivered), until told to stop; every session made is remembered."""

    def __init__(self, base: str, stripe: RunningStripe) -> None:
        self.base, self.stripe = base, stripe
        self.made: dict[str, str] = {}  # our id → Stripe's id
        self.failed: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._buy, daemon=True)

    def _buy(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as http:
            while not self.stop.is_set():
                self.buy_one(http)

    def buy_one(self, http: httpx.Client) -> None:
        wallet = new_wallet()
        created = http.post(
            "/api/v1/onramp/sessions",
            json={"walletAddress": wallet, "sourceAmount": "25.00"},
            headers={"Authorization": f"Bearer {token_for(wallet)}"},
        )
        if created.status_code != 201:
            self.failed.append(created.text)
            self.stop.set()
            return
        session = created.json()
        self.made[session["id"]] = session["stripeSessionId"]
        step = len(self.made) % 3
        if step >= 1:
            self.stripe.advance(session["stripeSessionId"], "requires_payment")
        if step == 2:
            tx = "0x" + secrets.token_hex(32)
            self.stripe.advance(
                session["stripeSessionId"], "fulfillment_complete", transactionId=tx
            )


def wait_for(buyers: Buyers, count: int) -> None:
    deadline = time.monotonic() + 60
    while len(buyers.made) < count and not buyers.failed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not buyers.failed, buyers.failed
    assert len(buyers.made) >= count


def test_a_restored_database_gets_every_session_back_with_zero_drift(
    own_database: tuple[str, str], stripe: RunningStripe, tmp_path: Path
) -> None:
    name, url = own_database
    migrations.upgrade(DatabaseSettings(DATABASE_URL=url))
    since = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    server = OnrampProcess(tmp_path, "serve", "--no-worker", **service_env(url, stripe))
    server.start()
    stripe.send_webhooks_to(f"{server.url}/api/v1/webhooks/stripe", WEBHOOK_SECRET)
    buyers = Buyers(server.url, stripe)
    buyers.thread.start()
    backup = tmp_path / "backup.dump"
    try:
        wait_for(buyers, 12)
        dumped = subprocess.run(
            ["pg_dump", "--format=custom", f"--file={backup}", url],
            capture_output=True,
            text=True,
            check=False,
        )
        assert dumped.returncode == 0, dumped.stderr
        in_backup = len(buyers.made)
        wait_for(buyers, in_backup + 12)
    finally:
        buyers.stop.set()
        buyers.thread.join(timeout=60)
    stripe.wait_for_webhooks()
    server.stop()

    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    restored = subprocess.run(
        ["pg_restore", "--no-owner", f"--dbname={url}", str(backup)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert restored.returncode == 0, restored.stderr
    kept = {row[0] for row in query(url, "SELECT id FROM onramp_sessions")}
    lost = set(buyers.made) - kept
    assert lost, "the backup should predate some sessions"

    env = cli_env(url, stripe)
    imported = run_onramp("sessions", "import", "--since", since, "--json", cwd=tmp_path, **env)
    assert imported.returncode == 0, imported.stderr
    outcomes = {row["session_id"]: row["outcome"] for row in json.loads(imported.stdout)}
    assert {i for i, outcome in outcomes.items() if outcome == "imported"} == lost
    assert "failed" not in outcomes.values()

    report = run_onramp("reconcile", "--since", since, "--format", "json", cwd=tmp_path, **env)
    assert report.returncode == 0, report.stdout + report.stderr
    body = json.loads(report.stdout)
    assert (body["compared"], body["drifted"]) == (len(buyers.made), 0)
    stored = query(url, "SELECT id, stripe_session_id FROM onramp_sessions")
    assert dict(stored) == buyers.made
    checks = query(url, "SELECT count(*) FROM delivery_checks")
    fulfilled = sum(
        1 for s in stripe.simulator.sessions.values() if s["status"] == "fulfillment_complete"
    )
    assert checks == [(fulfilled,)]
