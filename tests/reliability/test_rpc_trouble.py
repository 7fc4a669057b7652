"""Delivery checks while every RPC node is down or talking nonsense: sessions wait as
`pending`, never wrongly decided, and converge once a node is healthy again."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tests.support.anvil import Anvil
from tests.support.deliveries import delivered_sessions, delivery_statuses
from tests.support.processes import OnrampProcess, service_env
from tests.support.profile import Profile
from tests.support.rpc_trouble import MODES, TroubledNode


def test_deliveries_wait_out_broken_nodes_and_converge_when_one_heals(
    tmp_path: Path,
    anvil: Anvil,
    troubled_node: TroubledNode,
    emptied_postgresql: str,
    profile: Profile,
    record_figures: Callable[..., None],
) -> None:
    database_url = emptied_postgresql
    node = troubled_node
    token = anvil.deploy_token(10**30)
    node.mode = "html"
    ids = delivered_sessions(anvil, token, database_url, profile.deliveries)
    env = service_env(
        database_url,
        MEZO_RPC_URLS=f"{node.url},http://127.0.0.1:9",
        MUSD_TOKEN_ADDRESS=token,
        RPC_TIMEOUT_SECONDS="1",
        DELIVERY_TIMEOUT_SECONDS="3600",
    )
    worker = OnrampProcess(tmp_path, "worker", **env)
    worker.start(wait=False)
    try:
        for mode in MODES[1:]:
            node.mode = mode
            time.sleep(1.5)
        assert worker.process is not None
        assert worker.process.poll() is None, worker.output()
        during = delivery_statuses(database_url, ids)
        assert set(during.values()) == {"pending"}, "nothing may be decided on nonsense"
        requests_in_trouble = node.requests

        node.mode = "healthy"
        healed = time.monotonic()
        deadline = healed + 90
        while set(delivery_statuses(database_url, ids).values()) != {"confirmed"}:
            assert time.monotonic() < deadline, delivery_statuses(database_url, ids)
            time.sleep(0.2)
        converged = time.monotonic() - healed
    finally:
        returncode = worker.stop()
    assert returncode == 0, worker.output()
    assert "Traceback" not in worker.output()
    record_figures(
        sessions=len(ids),
        trouble_modes=list(MODES[1:]),
        requests_answered_in_trouble=requests_in_trouble,
        seconds_to_converge_after_healing=round(converged, 1),
    )
