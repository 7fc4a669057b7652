"""Reconciling sessions with Stripe: the repair for lost or late webhooks, for one
session (an operator's sync) or many (`onramp sessions replay`).

Each session is re-read from Stripe through the same client the API uses and applied
through the same compare-and-set as a webhook, so a replay never moves a session back
and running it again changes nothing more. A dry run applies inside a transaction and
rolls it back, so it reports exactly what a real run would change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from service.audit.actions import Outcome
from service.audit.trail import Audit
from service.columns import utcnow
from service.database import Database
from service.delivery import checks
from service.errors import Conflict, NotFound
from service.merchant_webhooks import outbox
from service.onramp import repository, schemas
from service.onramp.lifecycle import LIFECYCLE
from service.onramp.models import SessionRow
from service.onramp.repository import Chosen
from service.onramp.rules import is_session_id
from service.onramp.stripe_client import StripeOnramp
from service.onramp.updates import APPLIED, apply_update, update_from_stripe
from service.sql import RollBack


@dataclass(frozen=True)
class SessionReplayed:
    session_id: str
    before: str
    after: str
    outcome: str  # changed, unchanged or failed
    error: str | None = None


async def replay_sessions(
    database: Database,
    stripe: StripeOnramp,
    *,
    session_ids: list[str] | None = None,
    since: datetime | None = None,
    status: str | None = None,
    dry_run: bool = False,
    concurrency: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> list[SessionReplayed]:
    chosen = Chosen(status=status, created_since=since, ids=tuple(session_ids or ()))
    sessions = await repository.list_sessions(database, chosen, limit=None, newest_first=False)
    gate = asyncio.Semaphore(concurrency)
    finished = 0

    async def one(session: SessionRow) -> SessionReplayed:
        nonlocal finished
        async with gate:
            result = await _replay_one(database, stripe, session, dry_run)
        finished += 1
        if progress is not None:
            progress(finished, len(sessions))
        return result

    return list(await asyncio.gather(*(one(session) for session in sessions)))


async def _replay_one(
    database: Database, stripe: StripeOnramp, session: SessionRow, dry_run: bool
) -> SessionReplayed:
    before = session.status
    try:
        stripe_session = await stripe.retrieve_session(session.stripe_session_id or "")
        update = update_from_stripe(stripe_session)
        if update is None:
            raise ValueError("Stripe's answer is not an onramp session")
        async with database.transaction() as sql:
            applied = await apply_update(sql, update, utcnow(), checks, outbox)
            if dry_run:
                raise RollBack
    except Exception as error:  # report it and go on with the other sessions
        return SessionReplayed(session.id, before, before, "failed", _reason(error))
    after = LIFECYCLE.advance(before, update.status)
    changed = applied.outcome == APPLIED
    return SessionReplayed(session.id, before, after, "changed" if changed else "unchanged")


async def sync_session(
    database: Database, stripe: StripeOnramp, session_id: str, audit: Audit
) -> schemas.SessionSummary:
    """Re-read the session from Stripe, move it forward by what Stripe says, and have
    its delivery checked again if it is fulfilled; the audit row goes in the same
    transaction."""
    session = await repository.read(database, session_id) if is_session_id(session_id) else None
    if session is None:
        raise NotFound("No such session.")
    if session.stripe_session_id is None:
        raise Conflict(
            "The session was never created at Stripe; retry its create call.",
            code="session_incomplete",
        )
    update = update_from_stripe(await stripe.retrieve_session(session.stripe_session_id))
    if update is None:
        audit.conclude(Outcome.OK, "Stripe's answer is not an onramp session: nothing applied")
    else:
        async with database.transaction() as sql:
            applied = await apply_update(sql, update, utcnow(), checks, outbox)
            if applied.onramp_session_id and update.status == LIFECYCLE.fulfilled:
                await checks.reopen_check(sql, applied.onramp_session_id, utcnow())
            after = LIFECYCLE.advance(session.status, update.status)
            await audit.record(sql, detail=f"{applied.outcome}: {session.status} -> {after}")
    synced = await repository.read(database, session_id)
    if synced is None:  # pragma: no cover - deleted meanwhile
        raise NotFound("No such session.")
    return schemas.summary(synced)


def _reason(error: Exception) -> str:
    detail = getattr(error, "detail", None) or str(error)
    return f"{type(error).__name__}: {detail}"[:300]
