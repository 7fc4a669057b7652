"""The `onramp` command as an operator meets it: clear failures, a server that just runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import POSTGRES_ADMIN_URL
from tests.support.environment import BASE_ENV
from tests.support.processes import bare_env, run_onramp, serving


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PORT": "eighty"}, "onramp: configuration error: PORT: "),
        ({"DATABASE_URL": "mysql://db/x"}, "onramp: configuration error: DATABASE_URL: "),
        ({"LOG_LEVEL": "loud"}, "onramp: configuration error: LOG_LEVEL: "),
    ],
)
def test_bad_configuration_is_one_line_and_a_non_zero_exit(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    for command in ("serve", "migrate"):
        result = run_onramp(command, cwd=tmp_path, **env)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith(expected)
        assert "Traceback" not in result.stderr + result.stdout


def test_production_without_its_secrets_refuses_to_start(tmp_path: Path) -> None:
    result = run_onramp("serve", cwd=tmp_path, ENVIRONMENT="production", ALLOWED_ORIGINS="*")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert {line.split(":")[2].strip() for line in lines} == {
        "JWT_SECRET",
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "DATABASE_URL",
        "ALLOWED_ORIGINS",
        "AUTH_DOMAIN",
        "AUTH_URI",
        "ADMIN_API_KEYS",
    }
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "onramp.db").exists()


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    result = run_onramp("migrate", cwd=tmp_path, DATABASE_URL="postgresql://u:pw9@127.0.0.1:1/x")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("onramp: database error: ")
    assert "pw9" not in result.stderr


def test_serve_on_an_unmigrated_postgres_says_to_migrate(tmp_path: Path, postgres_url: str) -> None:
    empty = f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/postgres"
    result = run_onramp("serve", cwd=tmp_path, DATABASE_URL=empty)
    assert result.returncode == 2
    assert "run `onramp migrate` first" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_no_environment_runs_on_sqlite(tmp_path: Path) -> None:
    with serving(tmp_path) as base:
        assert httpx.get(f"{base}/health").json() == {"status": "ok"}
        ready = httpx.get(f"{base}/ready")
        assert ready.status_code == 200, ready.text
        openapi = httpx.get(f"{base}/schema/openapi.json")
        assert openapi.json()["info"]["title"] == "onramp"
    assert (tmp_path / "onramp.db").exists()


def test_serve_with_several_workers_shares_port_and_metrics(
    tmp_path: Path, migrated: dict[str, str]
) -> None:
    env = {**BASE_ENV, "DATABASE_URL": migrated["postgresql"]}
    with serving(tmp_path, "--workers", "2", **env) as base:
        for _ in range(20):
            assert httpx.get(f"{base}/ready").status_code == 200
        metrics = httpx.get(f"{base}/metrics").text
    counted = [
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("onramp_requests_total{") and 'path="/ready"' in line
    ]
    assert sum(counted) == 20


def test_an_unknown_revision_is_one_line(tmp_path: Path) -> None:
    for args in (("--revision", "bogus"), ("--downgrade", "bogus")):
        result = run_onramp("migrate", *args, cwd=tmp_path)
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("onramp: migration error: ")


def test_the_readme_demo_command_on_a_fresh_clone_installs_only_what_it_runs(
    tmp_path: Path, project_root: Path, record_figures: Callable[..., None]
) -> None:
    """`./run demo`, exactly as the README's first line says, in a fresh copy of the
    checkout: it makes its own environment (from the package caches a first `./run`
    filled) without the development packages, npm's 200 packages or the example dApp's
    build, and ends with a confirmed delivery."""
    clone, elsewhere = tmp_path / "clone", tmp_path / "elsewhere"
    fresh_copy(project_root, clone)
    elsewhere.mkdir()
    started = time.monotonic()
    result = subprocess.run(
        [str(clone / "run"), "demo"],
        env=bare_env(**machine_trust_and_mirrors()),
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    session = json.loads(result.stdout)
    assert session["status"] == "fulfillment_complete"
    assert session["delivery"]["status"] == "confirmed"
    assert session["delivery"]["deliveredAmount"] == session["destinationAmount"]
    assert "signed in with SIWE" in result.stderr
    assert "/demo" in result.stderr
    assert "_secret_" not in result.stdout + result.stderr
    assert list(elsewhere.iterdir()) == []  # nothing left behind
    assert not (clone / "node_modules").exists()
    assert not (clone / "examples" / "dapp" / "dist").exists()
    installed = subprocess.run(
        [str(clone / ".venv" / "bin" / "python"), "-c", "import pytest"], check=False
    )
    assert installed.returncode != 0  # the development group stayed out
    record_figures(seconds_from_fresh_clone_to_confirmed=round(seconds, 1))


def machine_trust_and_mirrors() -> dict[str, str]:
    """What this machine's package installers need to reach their indexes (certificate
    authorities, pip's and npm's settings), and no setting of the service's."""
    return {
        name: value
        for name, value in os.environ.items()
        if name.startswith(("PIP_", "NPM_CONFIG_", "npm_config_"))
        or name.endswith(("_CERT_FILE", "_CERT_DIR", "_CA_BUNDLE", "_CA_CERTS"))
    }


def fresh_copy(checkout: Path, into: Path) -> None:
    """The checkout's files as a clone would have them, uncommitted changes included."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=checkout,
        capture_output=True,
        check=True,
    )
    for name in listed.stdout.decode().split("\0"):
        source = checkout / name
        if name and source.is_file():
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
