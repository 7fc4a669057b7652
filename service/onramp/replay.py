"""Reconciling sessions with Stripe: the repair for lost or late webhooks.

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

from sqlmodel import col, select

from service.columns import utcnow
from service.database import Database
from service.onramp import state
from service.onramp.models import OnrampSession
from service.onramp.stripe_client import StripeOnramp
from service.onramp.updates import apply_update, update_from_stripe
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
    query = select(OnrampSession).where(col(OnrampSession.stripe_session_id).is_not(None))
    if session_ids:
        query = query.where(col(OnrampSession.id).in_(session_ids))
    if since is not None:
        query = query.where(col(OnrampSession.created_at) >= since)
    if status is not None:
        query = query.where(col(OnrampSession.status) == status)
    async with database.sessions() as db:
        sessions = list((await db.exec(query.order_by(col(OnrampSession.id)))).all())
    gate = asyncio.Semaphore(concurrency)
    finished = 0

    async def one(session: OnrampSession) -> SessionReplayed:
        nonlocal finished
        async with gate:
            result = await _replay_one(database, stripe, session, dry_run)
        finished += 1
        if progress is not None:
            progress(finished, len(sessions))
        return result

    return list(await asyncio.gather(*(one(session) for session in sessions)))


async def _replay_one(
    database: Database, stripe: StripeOnramp, session: OnrampSession, dry_run: bool
) -> SessionReplayed:
    before = session.status
    try:
        stripe_session = await stripe.retrieve_session(session.stripe_session_id or "")
        update = update_from_stripe(stripe_session)
        if update is None:
            raise ValueError("Stripe's answer is not an onramp session")
        async with database.transaction() as sql:
            applied = await apply_update(sql, update, utcnow())
            if dry_run:
                raise RollBack
    except Exception as error:  # report it and go on with the other sessions
        return SessionReplayed(session.id, before, before, "failed", _reason(error))
    after = state.advance_status(before, update.status)
    changed = applied.outcome == "applied"
    return SessionReplayed(session.id, before, after, "changed" if changed else "unchanged")


def _reason(error: Exception) -> str:
    detail = getattr(error, "detail", None) or str(error)
    return f"{type(error).__name__}: {detail}"[:300]
