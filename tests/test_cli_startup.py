"""`onramp` starts light: help and `migrate` import only what they use, so operators'
scripts and the pre-deploy migration do not pay for web3, the app or the stand-in.

These check which modules a real process loaded, not how long it took: timings on
two shared cores are noise (the figures are in bench/README.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.environment import BASE_ENV
from tests.support.processes import bare_env

HEAVY = ("web3", "uvicorn", "litestar", "stripe", "matplotlib", "eth_account", "aiohttp")
# What a command's help may not need either: drivers, the ORM, logging, settings.
NOT_FOR_HELP = (*HEAVY, "sqlalchemy", "psycopg", "alembic", "structlog", "pydantic", "rich")

PROBE = """
import json, sys
from service.cli import main
try:
    main(sys.argv[1:])
except SystemExit as end:
    code = end.code
print(json.dumps({"code": code, "modules": sorted({name.split(".")[0] for name in sys.modules})}))
"""


def loaded_by(*args: str, cwd: Path, **env: str) -> tuple[int, set[str], str]:
    """Run the `onramp` command line in a fresh interpreter; the top-level packages it
    imported, from its own `sys.modules`."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        env={**bare_env(), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    last = json.loads(result.stdout.strip().splitlines()[-1])
    return last["code"], set(last["modules"]), result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("--version",),
        ("migrate", "--help"),
        ("serve", "--help"),
        ("worker", "--help"),
        ("sessions", "list", "--help"),
        ("webhooks", "prune", "--help"),
        ("reconcile", "--help"),
    ],
)
def test_help_imports_no_heavy_module(args: tuple[str, ...], tmp_path: Path) -> None:
    code, modules, _ = loaded_by(*args, cwd=tmp_path)
    assert code in (0, None)
    assert modules.isdisjoint(NOT_FOR_HELP), modules & set(NOT_FOR_HELP)


def test_help_lists_every_command_with_its_summary(tmp_path: Path) -> None:
    _, _, output = loaded_by("--help", cwd=tmp_path)
    listed = output.split("Commands:", 1)[1]
    for name, summary in {
        "serve": "Run the HTTP API",
        "worker": "Check deliveries on chain",
        "migrate": "Bring the database schema",
        "demo": "The whole purchase",
        "stripe-sim": "Run the local Stripe stand-in",
        "sessions": "Onramp sessions as this service holds them",
        "webhooks": "Stripe's events as this service stored them",
        "delivery": "Delivery proof on chain",
        "reconcile": "Compare every session",
    }.items():
        assert f"  {name} " in listed
        assert summary in listed


def test_migrate_imports_neither_the_app_nor_web3(tmp_path: Path) -> None:
    code, modules, output = loaded_by(
        "migrate", cwd=tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/onramp.db"
    )
    assert code in (0, None), output
    assert "database schema at" in output
    assert modules.isdisjoint(HEAVY), modules & set(HEAVY)


SERVING = """
import asyncio, json, sys
from litestar.testing import AsyncTestClient
from service.app import create_app
from service.settings import Settings

async def ready():
    async with AsyncTestClient(create_app(Settings.from_env(json.loads(sys.argv[1])))) as client:
        assert (await client.get("/ready")).status_code == 200

asyncio.run(ready())
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_an_api_process_answers_ready_without_alembic_or_redis(tmp_path: Path) -> None:
    """Every API process holds what it imports for its life: alembic (with mako) is for
    the commands that change the schema, and redis-py (with OpenTelemetry's SDK, which
    redis 8 imports) for processes given a REDIS_URL. /ready still compares the
    database's revision with this release's head."""
    database = f"sqlite:///{tmp_path}/onramp.db"
    migrated = subprocess.run(
        [sys.executable, "-m", "service.cli", "migrate"],
        env={**bare_env(), "DATABASE_URL": database},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr
    env = {**BASE_ENV, "DATABASE_URL": database}
    result = subprocess.run(
        [sys.executable, "-c", SERVING, json.dumps(env)],
        env=bare_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    modules = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert "litestar" in modules
    assert modules.isdisjoint({"alembic", "mako", "redis"}), modules & {"alembic", "mako", "redis"}
