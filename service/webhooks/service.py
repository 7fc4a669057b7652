"""Receiving Stripe events: verify, log once, apply, answer fast.

The event is stored and applied in one transaction, so an acknowledged event is always
both logged and applied. A failure is recorded on the event (outcome `failed`) and
answered with a 500, so that Stripe delivers it again; a stored event that was never
processed is processed when it comes again, and `onramp webhooks replay` re-applies any.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import structlog

from service.columns import utcnow
from service.database import Database
from service.delivery import checks
from service.errors import NotConfigured
from service.merchant_webhooks import outbox
from service.onramp.events import SessionEvents
from service.onramp.updates import APPLIED, Applied, apply_update
from service.settings import StripeSettings
from service.sql import RollBack, SqlTransaction
from service.webhooks import metrics
from service.webhooks.events import StripeEvent, parse_event
from service.webhooks.repository import move_and_record, record_event
from service.webhooks.signatures import WebhookSignatureInvalid, verify_signature

log = structlog.get_logger("onramp.webhooks")


@dataclass(frozen=True)
class Receipt:
    event_id: str
    outcome: str


class WebhookIngestion:
    def __init__(self, database: Database, settings: StripeSettings) -> None:
        self.database = database
        self.secrets = [secret.get_secret_value() for secret in settings.webhook_secrets]
        self.tolerance = settings.webhook_tolerance_seconds

    async def receive(self, payload: bytes, signature_header: str | None) -> Receipt:
        if not self.secrets:
            raise NotConfigured(
                "Stripe webhooks are not configured on this service (STRIPE_WEBHOOK_SECRET).",
                code="webhooks_not_configured",
            )
        try:
            verify_signature(payload, signature_header, self.secrets, self.tolerance)
        except WebhookSignatureInvalid:
            metrics.signature_failures.inc()
            raise
        event = parse_event(payload)
        started = time.perf_counter()
        now = utcnow()
        try:
            outcome = await self._store_and_apply(event, payload, now)
        except Exception as error:
            await self._record_failure(event, payload, now, error)
            raise
        metrics.events_received.labels(event.type, outcome).inc()
        metrics.processing_seconds.observe(time.perf_counter() - started)
        if outcome != "duplicate":
            metrics.lag_seconds.observe(max(0.0, (now - event.created).total_seconds()))
        return Receipt(event.id, outcome)

    async def _store_and_apply(self, event: StripeEvent, payload: bytes, now: datetime) -> str:
        """Apply, then log, in one transaction. Applying is a compare-and-set, so doing
        it for an event already processed changes nothing; the log then says so and the
        (empty) transaction is rolled back. An event that moves its session is first
        tried in one statement, which does all that or nothing (`move_and_record`)."""
        moved = await move_and_record(self.database, event, payload, now)
        if moved is not None:
            log.debug("webhook_applied", event_id=event.id, outcome=APPLIED, session_id=moved.id)
            return APPLIED
        recorded = False
        async with self.database.transaction() as sql:
            merchant = outbox.Held()
            applied = await apply_event(sql, event, now, merchant)
            recorded = await record_event(
                sql,
                event,
                payload,
                now,
                applied.outcome,
                applied.onramp_session_id,
                applied.conflict,
                merchant.events,
            )
            if not recorded:
                raise RollBack
        if not recorded:
            return "duplicate"
        if applied.conflict is not None:
            log.warning("webhook_conflict", event_id=event.id, conflict=applied.conflict)
        if applied.outcome != "ignored":
            # The access line already records every delivery; this one is for debugging.
            log.debug(
                "webhook_applied",
                event_id=event.id,
                outcome=applied.outcome,
                session_id=applied.onramp_session_id,
            )
        return applied.outcome

    async def _record_failure(
        self, event: StripeEvent, payload: bytes, now: datetime, error: Exception
    ) -> None:
        log.error("webhook_failed", event_id=event.id, exc_info=error)
        metrics.events_received.labels(event.type, "failed").inc()
        try:
            async with self.database.transaction() as sql:
                await record_event(
                    sql,
                    event,
                    payload,
                    now,
                    "failed",
                    None,
                    f"{type(error).__name__}: {error}"[:500],
                )
        except Exception:  # the database itself may be what failed
            log.exception("webhook_failure_not_recorded", event_id=event.id)


async def apply_event(
    sql: SqlTransaction, event: StripeEvent, now: datetime, merchant: SessionEvents = outbox
) -> Applied:
    """What a stored event does to its session (nothing, for other kinds of events)."""
    if event.update is None:
        return Applied("ignored", None)
    return await apply_update(sql, event.update, now, checks, merchant)


def stored_event(payload: str) -> StripeEvent:
    """An event from the log, read the same way as when it arrived."""
    return parse_event(payload.encode("utf-8"))
