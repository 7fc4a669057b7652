"""The deployment as code: docker/compose.yaml, the Railway services and the GitHub
Actions workflow, none of which can run here (no Docker daemon, no Railway account, no
GitHub runner). Each is held to its published schema where there is one, and to what it
must run: the API, the worker as its own service, PostgreSQL and Redis, each with its
health check, and a migration before the API and the worker start; the workflow also to
every Debian tool `run` asks for, which `./run test` cannot install as a runner's user.

The schemas are the ones check-jsonschema vendors (a development dependency, so nothing
is fetched at test time): the Compose Specification's `schema/compose-spec.json` from
the compose-spec repository, and SchemaStore's `github-workflow.json`.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import click
import jsonschema
import yaml

from service.cli import main

ROOT = Path(__file__).resolve().parent.parent
# Config as code's settings, from Railway's reference (docs.railway.com/config-as-code/
# reference): a key outside these would be ignored by Railway, or refused.
RAILWAY_KEYS = {
    "build": {"builder", "dockerfilePath", "watchPatterns", "buildCommand", "railpackVersion"},
    "deploy": {
        "startCommand",
        "preDeployCommand",
        "healthcheckPath",
        "healthcheckTimeout",
        "restartPolicyType",
        "restartPolicyMaxRetries",
        "numReplicas",
        "cronSchedule",
        "sleepApplication",
        "overlapSeconds",
        "drainingSeconds",
    },
}


def vendored_schema(name: str) -> dict[str, Any]:
    folder = resources.files("check_jsonschema") / "builtin_schemas" / "vendor"
    schema: dict[str, Any] = json.loads((folder / f"{name}.json").read_text())
    return schema


def load_yaml(path: Path) -> dict[str, Any]:
    """YAML as plain dicts and lists, merge keys (`<<:`) applied."""
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def compose() -> dict[str, Any]:
    return load_yaml(ROOT / "docker" / "compose.yaml")


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return command if isinstance(command, list) else command.split()


def an_onramp_command(words: list[str]) -> bool:
    """`onramp NAME …` where NAME is one of the CLI's commands."""
    context = click.Context(main)
    return words[0] == "onramp" and main.get_command(context, words[1]) is not None


def test_the_compose_file_follows_the_compose_specification() -> None:
    schema = vendored_schema("compose-spec")
    jsonschema.validators.validator_for(schema)(schema).validate(compose())


def test_compose_runs_the_api_the_worker_postgresql_and_redis_each_with_a_health_check() -> None:
    services = compose()["services"]
    by_command = {" ".join(command_of(s)[:2]): s for s in services.values()}
    api, worker = by_command["onramp serve"], by_command["onramp worker"]
    postgres = next(s for s in services.values() if s.get("image", "").startswith("postgres:"))
    redis = next(s for s in services.values() if s.get("image", "").startswith("redis:"))
    for service in (api, worker, postgres, redis):
        assert service["healthcheck"]["test"], service
        assert not service["healthcheck"].get("disable", False)
    # The worker is its own service: the API's processes run none.
    assert "--no-worker" in command_of(api)
    # The worker's health check asks the port its /health listens on.
    port = worker["environment"]["WORKER_METRICS_PORT"]
    assert f"127.0.0.1:{port}/health" in " ".join(worker["healthcheck"]["test"])
    migrate = next(name for name, s in services.items() if command_of(s) == ["onramp", "migrate"])
    for service in (api, worker):
        assert an_onramp_command(command_of(service))
        condition = service["depends_on"][migrate]["condition"]
        assert condition == "service_completed_successfully"
    assert services[migrate]["depends_on"]["postgres"]["condition"] == "service_healthy"


def railway(name: str) -> dict[str, Any]:
    with (ROOT / name).open("rb") as file:
        return tomllib.load(file)


def test_railway_runs_the_api_after_a_migration_and_the_worker_as_a_second_service() -> None:
    api, worker = railway("railway.toml"), railway("railway.worker.toml")
    for config in (api, worker):
        assert config.keys() <= RAILWAY_KEYS.keys()
        for section, keys in config.items():
            assert keys.keys() <= RAILWAY_KEYS[section], section
        assert config["build"]["builder"] == "DOCKERFILE"
        assert (ROOT / config["build"]["dockerfilePath"]).is_file()
        assert config["deploy"]["healthcheckPath"] == "/health"
        assert an_onramp_command(config["deploy"]["startCommand"].split())
    assert api["deploy"]["startCommand"].split()[:2] == ["onramp", "serve"]
    assert "--no-worker" in api["deploy"]["startCommand"].split()
    assert api["deploy"]["preDeployCommand"] == ["onramp migrate"]
    assert worker["deploy"]["startCommand"] == "onramp worker"
    # Only the API migrates: two services migrating at once would race.
    assert "preDeployCommand" not in worker["deploy"]


def test_the_ci_workflow_follows_githubs_schema_and_runs_the_readme_test_command() -> None:
    path = ROOT / ".github" / "workflows" / "ci.yml"
    checked = subprocess.run(
        [
            Path(sys.executable).parent / "check-jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    workflow = load_yaml(path)
    [job] = workflow["jobs"].values()
    assert {step.get("run") for step in job["steps"]} >= {"./run test"}
    assert "exec ./run test" in (ROOT / ".ci" / "run").read_text()
    postgres, redis = job["services"]["postgres"], job["services"]["redis"]
    assert postgres["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    assert "5432:5432" in postgres["ports"]
    assert "6379:6379" in redis["ports"]
    assert "--health-cmd" in postgres["options"]
    assert "--health-cmd" in redis["options"]


def debian_tools_run_asks_for() -> dict[str, str]:
    """command: package, from every `ensure_debian_tools command:package …` call in `run`
    (its continued lines joined; the function's own definition is no call)."""
    script = (ROOT / "run").read_text().replace("\\\n", " ")
    pairs: dict[str, str] = {}
    for line in script.splitlines():
        if not line.strip().startswith("ensure_debian_tools "):
            continue
        for word in shlex.split(line, comments=True)[1:]:
            command, package = word.split(":", 1)
            pairs[command] = package
    return pairs


def apt_installs(script: str) -> set[str]:
    """The packages every `apt-get install` in a step's script names."""
    packages: set[str] = set()
    for line in script.replace("\\\n", " ").splitlines():
        if "apt-get" not in line:
            continue
        words = shlex.split(line, comments=True)
        if "install" in words[words.index("apt-get") :]:
            after = words[words.index("install", words.index("apt-get")) + 1 :]
            packages |= {word for word in after if not word.startswith("-")}
    return packages


def test_the_ci_workflow_installs_every_debian_tool_run_asks_for() -> None:
    # On GitHub's runner the user is not root, so `./run test` cannot install what
    # ensure_debian_tools finds missing and stops: the workflow must install each one, or
    # (Chromium, which the runner ships as chromium-browser or Chrome) put it on the path.
    asked = debian_tools_run_asks_for()
    assert {"chromium", "promtool", "amtool", "haproxy", "nginx", "envsubst"} <= asked.keys()
    [job] = load_yaml(ROOT / ".github" / "workflows" / "ci.yml")["jobs"].values()
    scripts = [step["run"] for step in job["steps"] if "run" in step]
    installed = set().union(*(apt_installs(script) for script in scripts))
    linked = {
        Path(shlex.split(line, comments=True)[-1]).name
        for script in scripts
        for line in script.splitlines()
        if line.strip().startswith("sudo ln ") or line.strip().startswith("ln ")
    }
    missing = {
        command: package
        for command, package in asked.items()
        if package not in installed and command not in linked
    }
    assert not missing, f"the workflow installs none of {missing} (`run` needs them)"
