"""docs/monitoring/alertmanager.yml: valid for Alertmanager, every alert rule of
alerts.yml routed by its severity to the receiver people watch for it, and "every RPC
node down" silencing "one node failing" in a running Alertmanager."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.anvil import free_port

MONITORING = Path(__file__).resolve().parent.parent / "docs" / "monitoring"
CONFIG = MONITORING / "alertmanager.yml"
# Who hears of an alert of each severity: the on-call pager, the team's chat, the mailbox.
RECEIVER_OF_SEVERITY = {"critical": "pager", "warning": "chat", "info": "email"}
ALL_NODES_DOWN, ONE_NODE_FAILING = "OnrampRpcAllNodesDown", "OnrampRpcNodeFailing"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: apt-get install prometheus-alertmanager (./run test does)")
    return path


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("amtool"), *args], capture_output=True, text=True, timeout=60, check=False
    )


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_the_configuration_is_valid() -> None:
    result = amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: str(rule["alert"]))
def test_each_alert_rule_reaches_the_receiver_of_its_severity(rule: dict[str, Any]) -> None:
    severity = rule.get("labels", {}).get("severity")
    assert severity in RECEIVER_OF_SEVERITY, f"{rule['alert']}: severity {severity!r} has no route"
    labels = [
        f"{name}={value}" for name, value in {"alertname": rule["alert"], **rule["labels"]}.items()
    ]
    result = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={CONFIG}",
        f"--verify.receivers={RECEIVER_OF_SEVERITY[severity]}",
        *labels,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_severity_has_a_route_of_its_own() -> None:
    """info has no rule yet; its route must exist before the first one comes."""
    for severity, receiver in RECEIVER_OF_SEVERITY.items():
        result = amtool(
            "config",
            "routes",
            "test",
            f"--config.file={CONFIG}",
            f"--verify.receivers={receiver}",
            f"severity={severity}",
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_inhibited_alert_is_one_the_rules_raise() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    inhibitions = yaml.safe_load(CONFIG.read_text())["inhibit_rules"]
    named = {
        matcher.split("=", 1)[1].strip('"')
        for rule in inhibitions
        for matcher in (*rule["source_matchers"], *rule["target_matchers"])
        if matcher.startswith("alertname=")
    }
    assert {ALL_NODES_DOWN, ONE_NODE_FAILING} <= named <= names


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """Debian's Alertmanager on a free port with the documented configuration, alone
    (no cluster)."""
    port = free_port()
    log = (tmp_path / "alertmanager.log").open("w")
    process = subprocess.Popen(
        [
            tool("prometheus-alertmanager"),
            f"--config.file={CONFIG}",
            f"--storage.path={tmp_path}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, (tmp_path / "alertmanager.log").read_text()
            assert time.monotonic() < deadline, "Alertmanager did not become ready"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def firing(name: str, **labels: str) -> dict[str, Any]:
    severity = next(rule["labels"]["severity"] for rule in alert_rules() if rule["alert"] == name)
    now = datetime.now(UTC)
    return {
        "labels": {"alertname": name, "severity": severity, **labels},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
    }


def inhibited_by(url: str, name: str) -> list[str]:
    alerts = httpx.get(f"{url}/api/v2/alerts", params={"filter": f'alertname="{name}"'}).json()
    assert len(alerts) == 1, alerts
    return list(alerts[0]["status"]["inhibitedBy"])


def test_all_nodes_down_silences_one_node_failing(alertmanager: str) -> None:
    node = firing(ONE_NODE_FAILING, host="rpc.test.mezo.org")
    httpx.post(f"{alertmanager}/api/v2/alerts", json=[node]).raise_for_status()
    assert inhibited_by(alertmanager, ONE_NODE_FAILING) == []
    httpx.post(f"{alertmanager}/api/v2/alerts", json=[firing(ALL_NODES_DOWN)]).raise_for_status()
    deadline = time.monotonic() + 15
    while not inhibited_by(alertmanager, ONE_NODE_FAILING):
        assert time.monotonic() < deadline, "the node's alert was not inhibited"
        time.sleep(0.1)
    assert inhibited_by(alertmanager, ALL_NODES_DOWN) == []
