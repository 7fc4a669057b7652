"""The settings replicas must share: start-up warns of a replica whose settings differ,
naming it and the settings, never a value; the table of them in docs/operations.md."""

from __future__ import annotations

import asyncio
import io
import json
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.logs import configure_logging
from service.operations.settings_fingerprint import fingerprint_of, shared_values
from service.settings import Settings
from service.settings.groups import SHARED_SETTINGS
from tests.support.processes import OnrampProcess

SECRET_A = "replica-a-" + "a" * 40
SECRET_B = "replica-b-" + "b" * 40


async def started(settings: Settings) -> list[dict[str, Any]]:
    """The JSON lines one app logs while it starts and stops."""
    app = create_app(settings)
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/health")).status_code == 200
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def warnings_in(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["event"] == "replica_settings_differ"]


async def test_a_replica_with_another_jwt_secret_is_warned_of_by_name(
    database_url: str, settings_from_env: Callable[..., Settings]
) -> None:
    def replica(name: str, secret: str) -> Settings:
        return settings_from_env(DATABASE_URL=database_url, REPLICA_NAME=name, JWT_SECRET=secret)

    assert warnings_in(await started(replica("api-1", SECRET_A))) == []
    second = await started(replica("api-2", SECRET_B))
    [warning] = warnings_in(second)
    assert warning["level"] == "warning"
    assert warning["replica"] == "api-2"
    assert warning["differing"] == [{"replica": "api-1", "role": "api", "settings": ["JWT_SECRET"]}]
    # A third on the first one's secret differs from the second only.
    [third] = warnings_in(await started(replica("api-3", SECRET_A)))
    assert third["differing"] == [{"replica": "api-2", "role": "api", "settings": ["JWT_SECRET"]}]
    # The same replica started again compares with the others, not with its own row.
    restarted = await started(replica("api-2", SECRET_B))
    [again] = warnings_in(restarted)
    assert [entry["replica"] for entry in again["differing"]] == ["api-1", "api-3"]
    text = json.dumps(second + restarted)
    assert SECRET_A not in text
    assert SECRET_B not in text


async def test_replicas_alike_but_for_their_own_capacity_are_not_warned_of(
    database_url: str, settings_from_env: Callable[..., Settings]
) -> None:
    env = {"DATABASE_URL": database_url, "JWT_SECRET": SECRET_A}
    await started(settings_from_env(**env, REPLICA_NAME="api-1", DATABASE_POOL_SIZE="5"))
    lines = await started(
        settings_from_env(**env, REPLICA_NAME="api-2", LIVE_MAX_STREAMS="100", PORT="8001")
    )
    assert warnings_in(lines) == []


async def test_onramp_worker_warns_at_its_start_too(
    migrated_postgresql: str,
    settings_from_env: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    env = {"DATABASE_URL": migrated_postgresql, "JWT_SECRET": SECRET_A}
    await started(settings_from_env(**env, REPLICA_NAME="api-1"))
    worker = OnrampProcess(
        tmp_path,
        "worker",
        **{**env, "MEZO_RPC_URLS": "http://127.0.0.1:9", "LOG_FORMAT": "json"},
        REPLICA_NAME="worker-1",
        RATE_LIMIT_PER_MINUTE="7",
    )
    worker.start(wait=False)
    try:
        deadline = time.monotonic() + 30
        while "worker_started" not in worker.output() and time.monotonic() < deadline:
            assert worker.process is not None
            assert worker.process.poll() is None, worker.output()
            await asyncio.sleep(0.1)
    finally:
        worker.stop()
    lines = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
    [warning] = warnings_in(lines)
    assert warning["role"] == "worker"
    assert {"replica": "api-1", "role": "api", "settings": ["RATE_LIMIT_PER_MINUTE"]} in warning[
        "differing"
    ]
    assert SECRET_A not in worker.output()


def test_a_secret_enters_the_fingerprint_only_as_a_hash(
    settings_from_env: Callable[..., Settings],
) -> None:
    one = fingerprint_of(settings_from_env(JWT_SECRET=SECRET_A, ADMIN_API_KEYS="ops:" + "k" * 40))
    other = fingerprint_of(settings_from_env(JWT_SECRET=SECRET_B, ADMIN_API_KEYS="ops:" + "k" * 40))
    assert one.value != other.value
    assert one.differing(other.digests) == ["JWT_SECRET"]
    assert SECRET_A not in repr(one)
    assert "k" * 40 not in repr(one)
    # Per-process settings are not part of it.
    same = fingerprint_of(
        settings_from_env(
            JWT_SECRET=SECRET_A,
            ADMIN_API_KEYS="ops:" + "k" * 40,
            DATABASE_POOL_SIZE="3",
            REPLICA_NAME="elsewhere",
        )
    )
    assert same == one


def test_every_shared_setting_is_a_setting(settings_from_env: Callable[..., Settings]) -> None:
    assert shared_values(settings_from_env()).keys() == SHARED_SETTINGS.keys()


def test_the_operations_guide_lists_exactly_the_shared_settings(project_root: Path) -> None:
    guide = (project_root / "docs" / "operations.md").read_text()
    section = guide.split("### Settings that must match", 1)[1].split("\n#", 1)[0]
    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| (.+?) \|$", section, flags=re.MULTILINE))
    assert rows == SHARED_SETTINGS


def test_the_replica_name_is_the_hosts_unless_set(
    settings_from_env: Callable[..., Settings],
) -> None:
    assert settings_from_env().server.replica_name == socket.gethostname()
    assert settings_from_env(REPLICA_NAME=" ").server.replica_name == socket.gethostname()
    assert settings_from_env(REPLICA_NAME="api-7").server.replica_name == "api-7"


@pytest.mark.parametrize(
    ("trusted", "forwarded", "client"),
    [("*", "198.51.100.7", "198.51.100.7"), ("", "198.51.100.7", "testclient")],
)
async def test_the_access_line_names_the_client_and_the_replica(
    migrated_sqlite: str,
    settings_from_env: Callable[..., Settings],
    trusted: str,
    forwarded: str,
    client: str,
) -> None:
    settings = settings_from_env(
        DATABASE_URL=migrated_sqlite, TRUSTED_PROXIES=trusted, REPLICA_NAME="api-9"
    )
    app = create_app(settings)
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    async with AsyncTestClient(app=app) as http:
        response = await http.get("/health", headers={"X-Forwarded-For": forwarded})
        assert response.status_code == 200
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    [access] = [line for line in lines if line["event"] == "request"]
    assert access["client"] == client
    assert access["replica"] == "api-9"
