"""Stripe's webhooks at volume while a replica crashes: nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.processes import OnrampProcess, service_env
from tests.support.profile import Profile
from tests.support.storm import (
    TRANSACTION,
    Delivery,
    insert_sessions,
    make_storm,
    send_storm,
    stored_outcome,
)


def test_a_storm_survives_a_replica_killed_mid_run(
    tmp_path: Path,
    migrated: dict[str, str],
    profile: Profile,
    record_figures: Callable[..., None],
) -> None:
    """Two `onramp serve` processes share the storm; one after the other is SIGKILLed
    mid-run and started again. Stripe's retries must make every session end where
    Stripe's own history ends, with each event stored once."""
    database_url = migrated["postgresql"]
    sessions = insert_sessions(database_url, profile.storm_sessions)
    storm = make_storm(sessions, seed=11)
    env = service_env(database_url)
    replicas = [OnrampProcess(tmp_path, "serve", **env) for _ in range(2)]
    for replica in replicas:
        replica.start()
    seen = Delivery()
    acknowledged_at_kills: list[int] = []

    async def crash_and_restart() -> None:
        for kill in range(profile.storm_kills):
            target = len(storm.events) * (kill + 1) // (profile.storm_kills + 1)
            await seen.until_acknowledged(target)
            acknowledged_at_kills.append(seen.acknowledged)
            replica = replicas[kill % 2]
            replica.kill()
            await asyncio.sleep(0.5)
            await asyncio.to_thread(replica.start)

    async def run() -> None:
        urls = [f"{replica.url}/api/v1/webhooks/stripe" for replica in replicas]
        await asyncio.gather(
            send_storm(storm.events, urls, senders=16, seen=seen), crash_and_restart()
        )

    started = time.monotonic()
    try:
        asyncio.run(run())
    finally:
        for replica in replicas:
            replica.stop()
    elapsed = time.monotonic() - started

    outcome = stored_outcome(database_url, sessions)
    assert len(acknowledged_at_kills) == profile.storm_kills
    assert all(count < len(storm.events) for count in acknowledged_at_kills)
    assert seen.acknowledged == len(storm.events)
    assert outcome.statuses == storm.expected
    complete = {own for own, status in storm.expected.items() if status == "fulfillment_complete"}
    assert outcome.fulfilled == dict.fromkeys(complete, TRANSACTION)
    assert outcome.events == (storm.distinct, storm.distinct)
    assert outcome.unprocessed == 0
    # A crashed replica fails its open connections; the survivor never answers 5xx.
    assert all(status < 500 for status in seen.statuses)
    record_figures(
        sessions=len(sessions),
        events_sent=len(storm.events),
        distinct_events=storm.distinct,
        kills=profile.storm_kills,
        transport_errors_retried=seen.transport_errors,
        answers=seen.statuses,
        seconds=round(elapsed, 1),
    )
