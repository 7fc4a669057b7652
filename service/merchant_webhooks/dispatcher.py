"""The dispatcher: sends the outbox's due deliveries, beside the delivery worker's rounds.

Each enabled endpoint has a lane of its own: a loop that claims that endpoint's due
deliveries (a lease; `FOR UPDATE SKIP LOCKED` on PostgreSQL, so any number of
dispatchers share the work, a conditional UPDATE on SQLite's single writer), sends them
at most `per_endpoint` at a time and records every attempt in one transaction. A slow or
failing endpoint fills only its own lane; `overall` bounds the requests in flight in the
whole process. A crash after a claim loses nothing: once the lease passes, another
dispatcher (or this one, restarted) claims the delivery again, with the same
`webhook-id` (at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import structlog

from service.columns import utcnow
from service.database import Database
from service.errors import DatabaseUnavailable
from service.merchant_webhooks import metrics, repository, rules
from service.merchant_webhooks.addresses import Resolver, resolve
from service.merchant_webhooks.models import AttemptRow, EndpointRow
from service.merchant_webhooks.repository import Claimed, Settled
from service.merchant_webhooks.sender import Answer, Sender
from service.settings import OutgoingWebhookSettings

log = structlog.get_logger("onramp.merchant_webhooks")

PER_ENDPOINT = 8
OVERALL = 64
# A lane claims this many sends' worth at once: a few waves of `PER_ENDPOINT`.
WAVES = 4
# A claim outlives its slowest round: every wave timing out, and time to record it.
LEASE = timedelta(seconds=WAVES * rules.ATTEMPT_TIMEOUT_SECONDS + 30)


@dataclass
class Dispatcher:
    database: Database
    settings: OutgoingWebhookSettings
    deployed: bool
    clock: Callable[[], datetime] = utcnow
    resolver: Resolver = resolve
    per_endpoint: int = PER_ENDPOINT
    overall: int = OVERALL
    idle_seconds: float = 1.0

    def __post_init__(self) -> None:
        self._in_flight = asyncio.Semaphore(self.overall)

    async def run(self, stop: asyncio.Event) -> None:
        """A lane for each enabled endpoint until `stop` is set; endpoints are looked up
        again every `idle_seconds`."""
        lanes: dict[str, asyncio.Task[None]] = {}
        try:
            while not stop.is_set():
                try:
                    enabled = set(await repository.enabled_endpoint_ids(self.database))
                    await self._measure()
                except DatabaseUnavailable as error:
                    log.warning("merchant_webhook_lookup_failed", error=error.cause)
                    enabled = set(lanes)
                except Exception:  # nothing may end the worker
                    log.exception("merchant_webhook_lookup_failed")
                    enabled = set(lanes)
                for gone in set(lanes) - enabled:
                    lanes.pop(gone).cancel()
                for endpoint_id in enabled - set(lanes):
                    lanes[endpoint_id] = asyncio.ensure_future(self._lane(endpoint_id, stop))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.idle_seconds)
        finally:
            for lane in lanes.values():
                lane.cancel()
            for lane in lanes.values():
                with contextlib.suppress(asyncio.CancelledError):
                    await lane

    async def _lane(self, endpoint_id: str, stop: asyncio.Event) -> None:
        sender = Sender(self.deployed, self.resolver, connections=self.per_endpoint)
        try:
            while not stop.is_set():
                try:
                    sent = await self.deliver_due(endpoint_id, sender)
                except DatabaseUnavailable as error:
                    log.warning("merchant_webhook_round_failed", error=error.cause)
                    sent = 0
                except Exception:  # nothing may end the lane
                    log.exception("merchant_webhook_round_failed", endpoint=endpoint_id)
                    sent = 0
                if sent == 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.idle_seconds)
        finally:
            await sender.close()

    async def deliver_due(self, endpoint_id: str, sender: Sender) -> int:
        """One round of one endpoint: claim its due deliveries, send, record; how many."""
        now = self.clock()
        lease = now + LEASE
        async with self.database.transaction() as sql:
            endpoint = await repository.endpoint_in(sql, endpoint_id)
            if endpoint is None or endpoint.status != rules.ENDPOINT_ENABLED:
                return 0
            claimed = await repository.claim(
                sql, endpoint_id, now, lease, self.per_endpoint * WAVES
            )
        if not claimed:
            return 0
        try:
            lane = asyncio.Semaphore(self.per_endpoint)
            answers = await asyncio.gather(
                *(self._attempt(endpoint, delivery, sender, lane) for delivery in claimed)
            )
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                async with self.database.transaction() as sql:
                    await repository.hand_back(sql, endpoint_id, lease)
            raise
        await self._record(endpoint, claimed, answers, lease)
        return len(claimed)

    async def _attempt(
        self,
        endpoint: EndpointRow,
        delivery: Claimed,
        sender: Sender,
        lane: asyncio.Semaphore,
    ) -> tuple[datetime, Answer]:
        async with lane, self._in_flight:
            at = self.clock()
            signing = rules.signing_secrets(
                endpoint.secret, endpoint.previous_secret, endpoint.previous_secret_until, at
            )
            headers = rules.signature_headers(delivery.event_id, delivery.body, at, signing)
            return at, await sender.send(endpoint.url, headers, delivery.body)

    async def _record(
        self,
        endpoint: EndpointRow,
        claimed: list[Claimed],
        answers: list[tuple[datetime, Answer]],
        lease: datetime,
    ) -> None:
        attempts, settled, outcomes = [], [], []
        since = endpoint.failing_since
        for delivery, (at, answer) in zip(claimed, answers, strict=True):
            tried = delivery.attempts + 1
            succeeded = rules.is_success(answer.status_code)
            since = rules.failing_since(since, at, succeeded)
            attempts.append(
                AttemptRow(
                    delivery.event_id,
                    endpoint.id,
                    delivery.type,
                    tried,
                    at,
                    answer.status_code,
                    answer.error,
                    answer.duration_ms,
                    answer.response_body,
                )
            )
            due = None if succeeded else rules.next_attempt(tried, at, self.settings.retry_seconds)
            outcome = rules.DELIVERED if succeeded else None if due else rules.GIVEN_UP
            finished = at if outcome else None
            settled.append(Settled(delivery.delivery_id, tried, due or at, outcome, finished))
            outcomes.append(outcome or "failed")
        now = self.clock()
        disable = rules.should_disable(since, now)
        async with self.database.transaction() as sql:
            await repository.insert_attempts(sql, attempts)
            await repository.settle(sql, lease, settled)
            await repository.record_failing(sql, endpoint.id, since, disable)
            sql.after_commit(partial(_count, outcomes))
        if disable:
            log.warning("merchant_webhook_endpoint_disabled", endpoint=endpoint.id)

    async def _measure(self) -> None:
        """The gauges: the oldest event still due, each endpoint's run of failures."""
        now = self.clock()
        oldest = await repository.oldest_open(self.database)
        metrics.oldest_undelivered.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0)
        failing = await repository.failing_endpoints(self.database)
        metrics.endpoint_failing.clear()
        for endpoint_id, since in failing.items():
            seconds = (now - since).total_seconds() if since else 0.0
            metrics.endpoint_failing.labels(endpoint_id).set(max(0.0, seconds))


def _count(outcomes: list[str]) -> None:
    for outcome in outcomes:
        metrics.deliveries.labels(outcome).inc()
