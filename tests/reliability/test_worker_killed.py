"""A delivery worker killed mid-round (SIGKILL: nothing is handed back) delays its
checks by one short lease, not by the longest round: its round renewed the lease while
it ran, so another worker running beside it never took them, and once the renewals stop
that worker takes them within seconds and confirms each delivery once."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from service.delivery.lease import LEASE_SECONDS, RENEW_EVERY_SECONDS
from service.demo.local_servers import patient
from tests.support.anvil import Anvil
from tests.support.deliveries import delivered_sessions, delivery_statuses
from tests.support.processes import OnrampProcess, service_env
from tests.support.rpc_trouble import TroubledNode

# What an operator may count on: a killed worker's checks are taken again within this.
TAKEN_AGAIN_WITHIN_SECONDS = 15


def test_a_killed_workers_checks_are_taken_by_another_within_15_seconds(
    tmp_path: Path,
    anvil: Anvil,
    troubled_node: TroubledNode,
    emptied_postgresql: str,
    record_figures: Callable[..., None],
) -> None:
    database_url = emptied_postgresql
    token = anvil.deploy_token(10**30)
    ids = delivered_sessions(anvil, token, database_url, 5)
    env = service_env(database_url, MUSD_TOKEN_ADDRESS=token, RPC_TIMEOUT_SECONDS="60")
    troubled_node.mode = "hang"  # the first worker's round waits on its node
    stuck = OnrampProcess(tmp_path, "worker", **{**env, "MEZO_RPC_URLS": troubled_node.url})
    healthy = OnrampProcess(tmp_path, "worker", **{**env, "MEZO_RPC_URLS": anvil.url})
    stuck.start(wait=False)
    try:
        # The worker's start-up: longer on a busy machine.
        wait_until(lambda: checks(database_url, ids)["held"] == len(ids), stuck.output, patient(30))
        healthy.start(wait=False)
        # Longer than a lease: the round's renewals keep its checks from the other worker.
        held_since = time.monotonic()
        while time.monotonic() - held_since < LEASE_SECONDS + 2 * RENEW_EVERY_SECONDS:
            assert checks(database_url, ids) == {"held": len(ids), "attempts": len(ids)}
            time.sleep(0.5)

        stuck.kill()
        killed = time.monotonic()
        wait_until(
            lambda: set(delivery_statuses(database_url, ids).values()) == {"confirmed"},
            healthy.output,
            within=TAKEN_AGAIN_WITHIN_SECONDS + patient(30),
        )
        confirmed_after = time.monotonic() - killed
    finally:
        stuck.kill()
        returncode = healthy.stop()
    assert returncode == 0, healthy.output()
    assert confirmed_after < TAKEN_AGAIN_WITHIN_SECONDS, healthy.output()
    # One claim by each worker, one credit per delivery: confirmed once.
    assert checks(database_url, ids) == {"held": 0, "attempts": 2 * len(ids)}
    assert credits(database_url, ids) == {session_id: 1 for session_id in ids}
    record_figures(seconds_from_kill_to_confirmed=round(confirmed_after, 2))


def checks(database_url: str, ids: list[str]) -> dict[str, int]:
    """How many of the checks a worker holds now, and every claim they have had."""
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            "SELECT count(*) FILTER (WHERE claimed_until > now()), coalesce(sum(attempts), 0)"
            " FROM delivery_checks WHERE onramp_session_id = ANY(%s)",
            (ids,),
        ).fetchone()
    assert row is not None
    return {"held": int(row[0]), "attempts": int(row[1])}


def credits(database_url: str, ids: list[str]) -> dict[str, int]:
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT onramp_session_id, count(*) FROM delivery_credits"
            " WHERE onramp_session_id = ANY(%s) GROUP BY onramp_session_id",
            (ids,),
        ).fetchall()
    return {session_id: int(count) for session_id, count in rows}


def wait_until(
    condition: Callable[[], bool], explain: Callable[[], str], within: float = 30
) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, explain()
        time.sleep(0.1)
