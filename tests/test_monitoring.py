"""The alert rules and dashboard in docs/monitoring: valid for Prometheus, tested by
`promtool`, and naming only metrics the service or its worker really export, so the
documents cannot drift from the code."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.support.metrics import exported_names
from tests.support.processes import OnrampProcess

MONITORING = Path(__file__).resolve().parent.parent / "docs" / "monitoring"
_METRIC = re.compile(r"\bonramp_[a-z0-9_]+")
# Written by `onramp reconcile` for node_exporter's textfile collector, not served.
FROM_TEXTFILES = {"onramp_reconcile_drift_sessions", "onramp_reconcile_last_run_timestamp_seconds"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: apt-get install prometheus (./run test does)")
    return subprocess.run(
        [path, *args], cwd=MONITORING, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_alert_rules_are_valid() -> None:
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_alert_fires_on_its_failure_and_not_on_a_healthy_series() -> None:
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_test() -> None:
    rules = set(re.findall(r"- alert: (\w+)", (MONITORING / "alerts.yml").read_text()))
    tests = (MONITORING / "alerts_test.yml").read_text()
    tested = re.findall(r"alertname: (\w+)\n\s+exp_alerts:( \[\])?", tests)
    assert {name for name, quiet in tested if not quiet} == rules
    assert {name for name, quiet in tested if quiet} == rules


def names_in_documents() -> set[str]:
    alerts = set(_METRIC.findall((MONITORING / "alerts.yml").read_text()))
    panels = json.loads((MONITORING / "dashboard.json").read_text())["panels"]
    exprs = [target["expr"] for panel in panels for target in panel.get("targets", [])]
    return alerts | {name for expr in exprs for name in _METRIC.findall(expr)}


async def test_every_metric_in_the_alerts_and_dashboard_is_exported(
    make_client: Callable[..., AsyncTestClient[Litestar]],
    migrated: dict[str, str],
    tmp_path: Path,
) -> None:
    async with make_client() as client:
        await client.get("/health")  # request metrics exist from the first request on
        served = exported_names((await client.get("/metrics")).text)
    worker = OnrampProcess(tmp_path, "worker", DATABASE_URL=migrated["sqlite"])
    worker.env["WORKER_METRICS_PORT"] = str(worker.port)
    worker.start()
    try:
        async with httpx.AsyncClient(base_url=worker.url) as http:
            served |= exported_names((await http.get("/metrics")).text)
    finally:
        assert worker.stop() == 0, worker.output()
    documented = names_in_documents()
    assert documented >= FROM_TEXTFILES
    assert documented - FROM_TEXTFILES - served == set()
