"""Stripe's webhook traffic at volume: sessions to move, events in any order, and a
sender that retries like Stripe."""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from dataclasses import dataclass, field

import httpx
import psycopg

from service.columns import new_id
from tests.support.webhooks import encode, onramp_event, sign

HAPPY = ["requires_payment", "fulfillment_processing", "fulfillment_complete"]
TRANSACTION = "0x" + "1" * 64


def insert_sessions(database_url: str, count: int) -> list[tuple[str, str]]:
    """`count` sessions straight into the table: (our id, Stripe's id) each."""
    rows = [(new_id("ors"), f"cos_{secrets.token_hex(12)}") for _ in range(count)]
    with psycopg.connect(database_url) as connection:
        connection.cursor().executemany(
            "INSERT INTO onramp_sessions (id, wallet_address, stripe_session_id, livemode, status,"
            " source_amount, source_currency, destination_currency, destination_network,"
            " delivery_status, delivery_confirmations, created_at, updated_at)"
            " VALUES (%s, %s, %s, false, 'initialized', '100.00', 'usd', 'musd', 'mezo',"
            " 'not_started', 0, now(), now())",
            [(own, "0x52908400098527886E0F7030069857D2E4169EE7", stripe) for own, stripe in rows],
        )
    return rows


@dataclass
class Storm:
    """Each session's events (some duplicated), shuffled, and the status each must end in."""

    events: list[bytes]
    expected: dict[str, str]

    @property
    def distinct(self) -> int:
        return len(set(self.events))


def make_storm(sessions: list[tuple[str, str]], seed: int, duplicates: float = 0.3) -> Storm:
    rng = random.Random(seed)
    expected: dict[str, str] = {}
    events: list[bytes] = []
    for own, stripe_id in sessions:
        length = rng.randint(1, 3)
        sequence = HAPPY[:length]
        if length < 3 and rng.random() < 0.3:
            sequence = [*sequence, "rejected"]
        expected[own] = sequence[-1]
        for status in sequence:
            body = encode(onramp_event(stripe_id, status, transaction_id=TRANSACTION))
            events.append(body)
            if rng.random() < duplicates:
                events.append(body)
    rng.shuffle(events)
    return Storm(events, expected)


@dataclass
class Delivery:
    """What the senders saw: answers by status, transport failures, what was acked, and
    when each failure happened (monotonic seconds; status 0 for a transport error)."""

    statuses: dict[int, int] = field(default_factory=dict)
    transport_errors: int = 0
    acknowledged: int = 0
    acknowledged_bodies: list[bytes] = field(default_factory=list)
    acknowledged_at: list[float] = field(default_factory=list)
    failures: list[tuple[float, int]] = field(default_factory=list)
    problem_codes: dict[str, int] = field(default_factory=dict)
    _milestones: list[tuple[int, asyncio.Event]] = field(default_factory=list)

    async def until_acknowledged(self, count: int) -> None:
        """Returns once `count` events have been acknowledged (for faults mid-run)."""
        reached = asyncio.Event()
        self._milestones.append((count, reached))
        self._reach_milestones()
        await reached.wait()

    def _reach_milestones(self) -> None:
        for count, reached in self._milestones:
            if self.acknowledged >= count:
                reached.set()

    def answered(self, response: httpx.Response, body: bytes) -> None:
        status = response.status_code
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if response.is_success:
            self.acknowledged += 1
            self.acknowledged_bodies.append(body)
            self.acknowledged_at.append(time.monotonic())
            self._reach_milestones()
            return
        self.failures.append((time.monotonic(), status))
        if response.headers.get("content-type", "").startswith("application/problem+json"):
            code = str(response.json().get("code"))
            self.problem_codes[code] = self.problem_codes.get(code, 0) + 1

    def unreachable(self) -> None:
        self.transport_errors += 1
        self.failures.append((time.monotonic(), 0))


async def send_like_stripe(
    http: httpx.AsyncClient, url: str, body: bytes, seen: Delivery, attempts: int = 40
) -> None:
    """At least once: retry anything but a 2xx, as Stripe does (with a faster back-off)."""
    for attempt in range(attempts):
        try:
            response = await http.post(
                url, content=body, headers={"Stripe-Signature": sign(body)}, timeout=30
            )
        except httpx.TransportError:
            seen.unreachable()
            await asyncio.sleep(min(0.05 * (attempt + 1), 1))
            continue
        seen.answered(response, body)
        if response.is_success:
            return
        await asyncio.sleep(min(0.05 * (attempt + 1), 1))
    raise AssertionError(f"gave up on {body[:60]!r}")


async def send_storm(events: list[bytes], urls: list[str], senders: int, seen: Delivery) -> None:
    """`senders` concurrent senders share the events, spread over `urls`."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in events:
        queue.put_nowait(body)
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=senders * 2)) as http:

        async def sender(number: int) -> None:
            while not queue.empty():
                body = queue.get_nowait()
                await send_like_stripe(http, urls[number % len(urls)], body, seen)

        await asyncio.gather(*(sender(n) for n in range(senders)))


@dataclass
class Stored:
    statuses: dict[str, str]
    events: tuple[int, int]  # rows, distinct ids
    fulfilled: dict[str, str]  # session id: transaction hash, where a check was scheduled
    unprocessed: int


def stored_outcome(database_url: str, sessions: list[tuple[str, str]]) -> Stored:
    """Statuses, the event log's counts and the delivery checks, as stored."""
    own_ids = [own for own, _ in sessions]
    stripe_ids = [stripe_id for _, stripe_id in sessions]
    with psycopg.connect(database_url) as connection:
        statuses: dict[str, str] = dict(
            connection.execute(
                "SELECT id, status FROM onramp_sessions WHERE id = ANY(%s)", (own_ids,)
            ).fetchall()
        )
        events = connection.execute(
            "SELECT count(*), count(DISTINCT id) FROM webhook_events"
            " WHERE stripe_session_id = ANY(%s)",
            (stripe_ids,),
        ).fetchone()
        fulfilled: dict[str, str] = dict(
            connection.execute(
                "SELECT s.id, s.transaction_hash FROM onramp_sessions s"
                " JOIN delivery_checks c ON c.onramp_session_id = s.id WHERE s.id = ANY(%s)",
                (own_ids,),
            ).fetchall()
        )
        unprocessed = connection.execute(
            "SELECT count(*) FROM webhook_events WHERE processed_at IS NULL"
            " AND stripe_session_id = ANY(%s)",
            (stripe_ids,),
        ).fetchone()
    assert events is not None
    assert unprocessed is not None
    return Stored(statuses, (events[0], events[1]), fulfilled, unprocessed[0])
