"""Merchant webhooks: one worker's dispatcher sending 10,000 events to three endpoints.

Real processes on a fresh PostgreSQL database: the receivers (bench/receivers.py, a
uvicorn process each: one endpoint answering 200 at once, one 500, one after 2 s) and,
for every round, a fresh `onramp worker` (the delivery worker with the
dispatcher beside it, as production runs it). A round writes N events in one
transaction, as the outbox does, with a delivery to each endpoint of the round, and
times from that commit to the healthy endpoint's N-th distinct `webhook-id`.

Two kinds of round alternate (`alone` first in even rounds): the healthy endpoint
`alone`, and `with others`, where the failing and the slow endpoint get the same N
events. The goal: every event at the healthy endpoint within 30 s in every round with
the others. The figures are medians over rounds; the ratio of the healthy endpoint's
time with the others to its time alone is the median of each round's pair: what the
failing endpoint's attempts and retries and the slow endpoint's held requests cost it
(a figure, not a goal: with the others the one worker sends twice the requests).
Also the slow endpoint's throughput (bounded by the dispatcher's per-endpoint
concurrency over its 2 s answers) and the worker's CPU per request sent.

    .venv/bin/python bench/merchant_webhooks.py [--events 10000] [--rounds 3]

`bench/run` runs it with the other benchmarks; this runs it alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import BIN, ROOT, Server, fresh_database, server
from bench.loadgen import cpu_seconds
from bench.receivers import ANSWERS, SLOW_SECONDS
from bench.stack import service_env
from service.columns import new_id, utcnow
from service.merchant_webhooks import dispatcher, payloads, rules
from service.merchant_webhooks.models import ENDPOINT_ID_PREFIX, EVENT_ID_PREFIX
from service.onramp.models import SessionRow

Receivers = dict[str, Server]
GOAL_SECONDS = 30.0
WALLET = "0x52908400098527886E0F7030069857D2E4169EE7"
KINDS = ("alone", "with others")
ENDPOINTS = {"alone": ("healthy",), "with others": ("healthy", "failing", "slow")}
# The most the slow endpoint can take: the dispatcher's requests in flight to one
# endpoint, each held for the slow endpoint's answer.
SLOW_CEILING = dispatcher.PER_ENDPOINT / SLOW_SECONDS
DEADLINE_SECONDS = 180.0
POLL_SECONDS = 0.05


def receivers_command() -> list[str]:
    return [
        str(BIN / "uvicorn"),
        "bench.receivers:app",
        "--app-dir",
        str(ROOT),
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def worker_env(database_url: str) -> dict[str, str]:
    """The service's benchmark settings (bench/stack.py), the production retry schedule."""
    return {**service_env(database_url, "http://127.0.0.1:9")}


def event_bodies(count: int) -> list[tuple[str, str, str]]:
    """`count` events as the outbox writes them (payloads.render, a real session's shape):
    (id, session id, body)."""
    now = utcnow()
    events = []
    for number in range(count):
        session = SessionRow(
            WALLET,
            "100.00",
            "usd",
            "musd",
            "mezo",
            stripe_session_id=f"cos_hooks_{number}",
            status="fulfillment_complete",
            destination_amount="99.10",
            transaction_hash="0x" + f"{number:064x}",
            delivery_status="confirmed",
            delivery_confirmations=12,
        )
        body = payloads.render(rules.DELIVERY_DECIDED["confirmed"], now, session)
        events.append((new_id(EVENT_ID_PREFIX), session.id, body))
    return events


def write_endpoints(url: str, receivers: Receivers, names: tuple[str, ...]) -> list[str]:
    """A clean slate and the round's endpoints, enabled; their ids."""
    now = utcnow()
    ids = [new_id(ENDPOINT_ID_PREFIX) for _ in names]
    with psycopg.connect(url) as connection:
        connection.execute(
            "TRUNCATE merchant_webhook_attempts, merchant_webhook_deliveries,"
            " merchant_webhook_events, merchant_webhook_endpoints"
        )
        for endpoint_id, name in zip(ids, names, strict=True):
            connection.execute(
                "INSERT INTO merchant_webhook_endpoints (id, url, status, secret, created_at)"
                " VALUES (%s, %s, %s, %s, %s)",
                (
                    endpoint_id,
                    f"{receivers[name].url}/{name}",
                    rules.ENDPOINT_ENABLED,
                    rules.new_secret(),
                    now,
                ),
            )
    return ids


def commit_events(url: str, endpoint_ids: list[str], events: list[tuple[str, str, str]]) -> float:
    """The events and a delivery of each to each endpoint, in one transaction as the
    outbox writes them; the monotonic time of the commit."""
    now = utcnow()
    kind = rules.DELIVERY_DECIDED["confirmed"]
    with psycopg.connect(url) as connection:
        with connection.cursor().copy(
            "COPY merchant_webhook_events (id, type, onramp_session_id, body, created_at)"
            " FROM STDIN"
        ) as copy:
            for event_id, session_id, body in events:
                copy.write_row((event_id, kind, session_id, body, now))
        with connection.cursor().copy(
            "COPY merchant_webhook_deliveries (event_id, endpoint_id, due_at, attempts,"
            " created_at) FROM STDIN"
        ) as copy:
            for event_id, _, _ in events:
                for endpoint_id in endpoint_ids:
                    copy.write_row((event_id, endpoint_id, now, 0, now))
        connection.commit()
        return time.monotonic()


def tally(receiver: Server) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(f"{receiver.url}/stats", timeout=10).json()
    return stats


def settled_cpu(pid: int, seconds: float = 30.0) -> float:
    """The worker's CPU time once its start-up is over (its first rounds, the imports
    they make): two looks 0.2 s apart that differ by less than 10 ms."""
    deadline = time.monotonic() + seconds
    used = cpu_seconds([pid])
    while time.monotonic() < deadline:
        time.sleep(0.2)
        before, used = used, cpu_seconds([pid])
        if used - before < 0.01:
            return used
    raise RuntimeError(f"the worker kept busy for {seconds:.0f} s with nothing to send")


def run_round(
    url: str, receivers: Receivers, kind: str, events: list[tuple[str, str, str]], log: Path
) -> dict[str, Any]:
    """One round on a fresh worker: from the events' commit until the healthy endpoint
    has every one of them."""
    for receiver in receivers.values():
        httpx.post(f"{receiver.url}/reset", timeout=10).raise_for_status()
    endpoint_ids = write_endpoints(url, receivers, ENDPOINTS[kind])
    receiving_pids = [receiver.process.pid for receiver in receivers.values()]
    command = [str(BIN / "onramp"), "worker"]
    with server(command, worker_env(url), log, port_variable="WORKER_METRICS_PORT") as worker:
        pid = worker.process.pid
        cpu_before = settled_cpu(pid)
        receivers_before = cpu_seconds(receiving_pids)
        committed = commit_events(url, endpoint_ids, events)
        deadline = committed + DEADLINE_SECONDS
        while (healthy := tally(receivers["healthy"]))["distinct"] < len(events):
            if time.monotonic() > deadline or worker.process.poll() is not None:
                raise RuntimeError(
                    f"{kind}: {healthy['distinct']} of {len(events)} events reached"
                    f" the healthy endpoint in {DEADLINE_SECONDS:.0f} s; worker log {log}"
                )
            time.sleep(POLL_SECONDS)
        cpu = cpu_seconds([pid]) - cpu_before
        receivers_cpu = cpu_seconds(receiving_pids) - receivers_before
        window = time.monotonic() - committed
        seen = {name: tally(receiver) for name, receiver in receivers.items()}
    seconds = healthy["last_new_at"] - committed
    requests = sum(seen[name]["requests"] for name in ENDPOINTS[kind])
    figures: dict[str, Any] = {
        "kind": kind,
        "events": len(events),
        "healthy_seconds": seconds,
        "healthy_per_second": len(events) / seconds,
        "first_delivery_seconds": healthy["first_at"] - committed,
        "requests_sent": requests,
        "worker_cpu_seconds": cpu,
        "worker_cpu_ms_per_request": 1000 * cpu / requests,
        "receivers_cpu_ms_per_request": 1000 * receivers_cpu / requests,
        "window_seconds": window,
        "receivers": seen,
    }
    if "slow" in ENDPOINTS[kind]:
        figures["slow_per_second"] = seen["slow"]["answered"] / window
        failing = seen["failing"]
        figures["failing_attempts"] = failing["requests"]
        figures["failing_retries"] = failing["requests"] - failing["distinct"]
    return figures


@contextmanager
def receiving(work: Path) -> Iterator[Receivers]:
    """A receiver process for each kind of endpoint."""
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(
                server(receivers_command(), {"RECEIVER": name}, work / f"receiver-{name}.log")
            )
            for name in ANSWERS
        }


def measure(events: int = 10_000, rounds: int = 3, work: Path | None = None) -> dict[str, Any]:
    """A warm-up, then the two kinds of round alternating; figures and verdicts."""
    work = work or Path(tempfile.mkdtemp(prefix="onramp-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    bodies = event_bodies(events)
    by_round: list[dict[str, dict[str, Any]]] = [{} for _ in range(rounds)]
    with ExitStack() as stack:
        url = stack.enter_context(fresh_database())
        receivers = stack.enter_context(receiving(work))
        run_round(
            url, receivers, "with others", bodies[: max(1, events // 20)], work / "warm-up.log"
        )
        for number in range(rounds):
            for kind in KINDS if number % 2 == 0 else tuple(reversed(KINDS)):
                log = work / f"worker-{number}-{kind.replace(' ', '-')}.log"
                by_round[number][kind] = run_round(url, receivers, kind, bodies, log)
    return summary(events, by_round)


def _median(by_round: list[dict[str, dict[str, Any]]], kind: str, key: str) -> float:
    return float(statistics.median(r[kind][key] for r in by_round))


def summary(events: int, by_round: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    ratio = float(
        statistics.median(
            r["with others"]["healthy_seconds"] / r["alone"]["healthy_seconds"] for r in by_round
        )
    )
    sides = {
        kind: {
            key: _median(by_round, kind, key)
            for key in (
                "healthy_seconds",
                "healthy_per_second",
                "worker_cpu_ms_per_request",
                "receivers_cpu_ms_per_request",
            )
        }
        for kind in KINDS
    }
    others = sides["with others"]
    for key in ("slow_per_second", "failing_attempts", "failing_retries"):
        others[key] = _median(by_round, "with others", key)
    slowest = max(r["with others"]["healthy_seconds"] for r in by_round)
    return {
        "benchmark": "merchant webhooks",
        "events": events,
        "rounds": len(by_round),
        "sides": sides,
        "ratio_with_others": ratio,
        "slow_ceiling_per_second": SLOW_CEILING,
        "goal": {"healthy_within_seconds": GOAL_SECONDS},
        "met": {"healthy_within_seconds": slowest <= GOAL_SECONDS},
        "by_round": by_round,
    }


def describe(result: dict[str, Any]) -> str:
    alone, others = result["sides"]["alone"], result["sides"]["with others"]
    return (
        f"{result['events']:,} events, medians of {result['rounds']} rounds: healthy endpoint"
        f" alone {alone['healthy_seconds']:.1f} s ({alone['healthy_per_second']:.0f}/s),"
        f" with the others {others['healthy_seconds']:.1f} s"
        f" ({others['healthy_per_second']:.0f}/s), ratio {result['ratio_with_others']:.2f}x;"
        f" slow endpoint {others['slow_per_second']:.1f}/s"
        f" (ceiling {result['slow_ceiling_per_second']:.1f}/s); failing endpoint"
        f" {others['failing_attempts']:.0f} attempts ({others['failing_retries']:.0f} retries);"
        f" worker CPU {alone['worker_cpu_ms_per_request']:.2f} ms per request alone,"
        f" {others['worker_cpu_ms_per_request']:.2f} with the others; the receivers"
        f" {others['receivers_cpu_ms_per_request']:.2f} ms per request"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "merchant-webhooks.json"
    )
    args = parser.parse_args()
    result = measure(args.events, args.rounds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(describe(result))
    print(json.dumps(result["met"]))


if __name__ == "__main__":
    main()
