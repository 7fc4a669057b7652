"""Onramp sessions: create (idempotently, surviving crashes), read, list, reconcile.

Creating a session spans two systems, so it runs as committed steps, Stripe-style:

1. claim   the client's Idempotency-Key (one INSERT … ON CONFLICT), or take over a key
           whose earlier request died, or answer from what the key already holds;
2. start   commit the local session, so its id exists before Stripe hears of it;
3. create  at Stripe with an idempotency key derived from that id: however often this
           step is repeated (SDK retries, client retries, a retry after a crash), Stripe
           makes one session;
4. finish  store Stripe's answer on the session and the response on the key, together.

A retry resumes at the first step not committed. Requests without a key run the same
steps; a failed one leaves nothing behind.

The usual call (a new key, or none, and no webhook for the session before Stripe has
answered) runs in hand-written SQL on the connection pool: claim and start commit
together in one transaction, finish in another. Everything unusual (an existing key, a
resumed session, a webhook that came first) takes the ORM path, which locks and merges.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import structlog
from sqlmodel.ext.asyncio.session import AsyncSession

from service.chain.destinations import Destinations
from service.columns import utcnow
from service.database import Database
from service.delivery.checks import reopen_check
from service.errors import Conflict, NotFound, Unprocessable
from service.onramp import schemas, state
from service.onramp.models import IdempotencyKey, NewSession, OnrampSession
from service.onramp.repository import (
    IN_FLIGHT_TIMEOUT,
    KEY_LIFETIME,
    IdempotencyRepository,
    SessionRepository,
    claim_and_start,
    delete_expired_keys,
    finish_as_started,
    insert_session,
    insert_session_for_key,
    read_page_rows,
    read_session_row,
)
from service.onramp.rules import (
    SessionRequest,
    check_status_filter,
    customer_ip,
    decode_cursor,
    encode_cursor,
    is_session_id,
    stripe_create_params,
)
from service.onramp.stripe_client import StripeOnramp, StripeRefused, StripeUnavailable
from service.onramp.updates import apply_update, transaction_id, update_from_stripe

log = structlog.get_logger("onramp.sessions")
CLEANUP_INTERVAL_SECONDS = 60.0
__all__ = ["IN_FLIGHT_TIMEOUT", "KEY_LIFETIME", "OnrampSessions", "apply_stripe_session"]


@dataclass(frozen=True)
class Created:
    """The final answer to a create call, and whether it is a replay of an earlier one."""

    session: schemas.SessionPublic
    replayed: bool = False


@dataclass(frozen=True)
class _Claim:
    key: str
    session_id: str | None
    customer_ip: str | None
    # The session this very claim stored, exactly as stored (the fast path).
    started: NewSession | None = None


def stripe_idempotency_key(onramp_session_id: str) -> str:
    return f"onramp-create-{onramp_session_id}"


class OnrampSessions:
    def __init__(
        self, database: Database, stripe: StripeOnramp, destinations: Destinations
    ) -> None:
        self.database = database
        self.stripe = stripe
        self.destinations = destinations
        self._last_cleanup = 0.0

    async def create_session(
        self, request: SessionRequest, idempotency_key: str | None, client_address: str | None
    ) -> Created:
        self.stripe.require_configured()
        claim: _Claim | None = None
        ip = customer_ip(client_address)
        if idempotency_key is not None:
            outcome = await self._claim(request, idempotency_key, ip)
            if isinstance(outcome, Created):
                return outcome
            claim = outcome
            # A retry may come from another address; Stripe must see the first one, or
            # it would refuse the same idempotency key with different parameters.
            ip = claim.customer_ip
        try:
            started = claim.started if claim else None
            if started is None and (claim is None or claim.session_id is None):
                started = await self._start(request, claim)
            session_id = started.id if started else claim.session_id if claim else None
            assert session_id is not None
            return await self._create_at_stripe(session_id, request, claim, ip, started)
        except (StripeRefused, StripeUnavailable):
            raise
        except BaseException:
            if claim is not None:  # a crash in this process: let the next retry resume now
                await self._release(request.wallet_address, claim.key)
            raise

    async def _claim(self, request: SessionRequest, key: str, ip: str | None) -> _Claim | Created:
        """A new key is claimed and its session stored in one transaction; a key that
        exists already (a retry, or an expired key) goes through `_claim_existing`."""
        now = utcnow()
        session = _new_session(request, self.stripe.livemode)
        await self._clean_up(now)
        if await claim_and_start(self.database, key, request.fingerprint(), now, ip, session):
            return _Claim(key, session.id, ip, started=session)
        return await self._claim_existing(request, key, ip)

    async def _claim_existing(
        self, request: SessionRequest, key: str, ip: str | None
    ) -> _Claim | Created:
        now = utcnow()
        wallet, fingerprint = request.wallet_address, request.fingerprint()
        async with self.database.sessions() as db, db.begin():
            keys = IdempotencyRepository(db)
            await keys.delete_if_expired(wallet, key, now)
            if await keys.claim_new(wallet, key, fingerprint, now, ip):
                return _Claim(key, None, ip)
            if await keys.take_over(wallet, key, fingerprint, now):
                held = await keys.get_one(wallet, key)
                return _Claim(key, held.onramp_session_id, held.customer_ip)
            held = await keys.get_one(wallet, key)
        return self._answer_from(held, fingerprint)

    def _answer_from(self, held: IdempotencyKey, fingerprint: str) -> Created:
        if held.fingerprint != fingerprint:
            raise Unprocessable(
                "This Idempotency-Key was used with a different request.",
                code="idempotency_key_reused",
            )
        if held.response_status is None or held.response_body is None:
            raise Conflict(
                "A request with this Idempotency-Key is still in progress; retry shortly.",
                code="idempotency_key_in_use",
            )
        stored = json.loads(held.response_body)
        if held.response_status == 201:
            return Created(msgspec.convert(stored, schemas.SessionPublic), replayed=True)
        raise StripeRefused(
            stored["detail"],
            stripeCode=stored["stripeCode"],
            headers={"Idempotent-Replayed": "true"},
        )

    async def _start(self, request: SessionRequest, claim: _Claim | None) -> NewSession:
        session = _new_session(request, self.stripe.livemode)
        if claim is None:
            await insert_session(self.database, session)
        else:
            await insert_session_for_key(self.database, session, request.wallet_address, claim.key)
        return session

    async def _create_at_stripe(
        self,
        session_id: str,
        request: SessionRequest,
        claim: _Claim | None,
        ip: str | None,
        started: NewSession | None = None,
    ) -> Created:
        params = stripe_create_params(request, session_id, ip, self._wallet_key(request))
        try:
            stripe_session = await self.stripe.create_session(
                params, stripe_idempotency_key(session_id)
            )
        except StripeRefused as refused:
            await self._abandon(session_id, request, claim, refused)
            raise
        except StripeUnavailable:
            await self._abandon(session_id, request, claim, None)
            raise
        if started is not None and (
            created := await self._finish_started(started, stripe_session, request, claim)
        ):
            return created
        async with self.database.sessions() as db, db.begin():
            # The row lock keeps a webhook for this session waiting until Stripe's answer
            # is stored, so neither overwrites the other.
            session = await SessionRepository(db).get_by_id(session_id, for_update=True)
            if session is None:  # pragma: no cover - only a manual delete gets here
                raise NotFound("The session disappeared while it was being created.")
            apply_stripe_session(session, stripe_session)
            body = schemas.public(session)
            if claim is not None:
                await IdempotencyRepository(db).update(
                    request.wallet_address,
                    claim.key,
                    response_status=201,
                    response_body=msgspec.json.encode(body).decode(),
                    locked_at=None,
                )
        log.info("session_created", session_id=session_id, stripe_session_id=body.stripe_session_id)
        return Created(body)

    def _wallet_key(self, request: SessionRequest) -> str:
        """Stripe's name for the network in `wallet_addresses` (`base_network` for Base)."""
        pair = (request.destination_network, request.destination_currency)
        destination = self.destinations.get(pair)
        return destination.stripe_wallet_key if destination else request.destination_network

    async def _finish_started(
        self,
        session: NewSession,
        stripe_session: dict[str, Any],
        request: SessionRequest,
        claim: _Claim | None,
    ) -> Created | None:
        """Stripe's answer on a session this call stored and nothing has touched since:
        one guarded UPDATE (with the key's answer) instead of a locked read. None when a
        webhook got there first; the caller then merges under the row's lock."""
        apply_stripe_session(session, stripe_session)
        body = schemas.public(session)
        answer = None
        if claim is not None:
            answer = (request.wallet_address, claim.key, msgspec.json.encode(body).decode())
        if not await finish_as_started(self.database, session, answer):
            return None
        log.info("session_created", session_id=session.id, stripe_session_id=body.stripe_session_id)
        return Created(body)

    async def _abandon(
        self,
        session_id: str,
        request: SessionRequest,
        claim: _Claim | None,
        refused: StripeRefused | None,
    ) -> None:
        """After a refusal nothing remains but the stored answer; after an outage, a
        keyed request keeps its session so that the retry resumes with it."""
        async with self.database.sessions() as db, db.begin():
            keys = IdempotencyRepository(db)
            if refused is not None or claim is None:
                await SessionRepository(db).delete(session_id)
            if claim is None:
                return
            if refused is None:
                await keys.update(request.wallet_address, claim.key, locked_at=None)
                return
            await keys.update(
                request.wallet_address,
                claim.key,
                onramp_session_id=None,
                response_status=refused.status,
                response_body=json.dumps(
                    {"detail": refused.detail, "stripeCode": refused.extra.get("stripeCode")}
                ),
                locked_at=None,
            )

    async def _release(self, wallet_address: str, key: str) -> None:
        try:
            async with self.database.sessions() as db, db.begin():
                await IdempotencyRepository(db).update(wallet_address, key, locked_at=None)
        except Exception:  # the original failure matters more than this clean-up
            log.exception("idempotency_release_failed")

    async def _clean_up(self, now: datetime) -> None:
        """Expired keys go at most once a minute per process, with a claim."""
        if time.monotonic() - self._last_cleanup < CLEANUP_INTERVAL_SECONDS:
            return
        self._last_cleanup = time.monotonic()
        removed = await delete_expired_keys(self.database, now)
        if removed:
            log.info("idempotency_keys_removed", count=removed)

    async def read(self, session_id: str, wallet_address: str) -> schemas.SessionPublic:
        """The wallet's own session; another wallet's is as absent as a missing one."""
        if not is_session_id(session_id):
            raise NotFound("No such session.")
        row = await read_session_row(self.database, session_id, wallet_address)
        if row is None:
            raise NotFound("No such session.")
        return schemas.public_from_row(row)

    async def page(
        self, wallet_address: str, *, status: str | None, cursor: str | None, limit: int
    ) -> schemas.SessionPage:
        """One page of the wallet's sessions, newest first; no cursor on the last page."""
        rows = await read_page_rows(
            self.database,
            wallet_address=wallet_address,
            status=check_status_filter(status),
            before_id=decode_cursor(cursor),
            limit=limit + 1,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return schemas.SessionPage(
            [schemas.public_from_row(row) for row in rows],
            encode_cursor(rows[-1][0]) if more else None,
        )

    async def sync(self, session_id: str) -> schemas.SessionSummary:
        """Re-read the session from Stripe, move it forward by what Stripe says, and have
        its delivery checked again if it is fulfilled."""
        if not is_session_id(session_id):
            raise NotFound("No such session.")
        async with self.database.sessions() as db, db.begin():
            session = await SessionRepository(db).get_by_id(session_id)
            if session is None:
                raise NotFound("No such session.")
            stripe_id = session.stripe_session_id
        if stripe_id is None:
            raise Conflict(
                "The session was never created at Stripe; retry its create call.",
                code="session_incomplete",
            )
        stripe_session = await self.stripe.retrieve_session(stripe_id)
        update = update_from_stripe(stripe_session)
        if update is not None:
            async with self.database.transaction() as sql:
                applied = await apply_update(sql, update, utcnow())
                if applied.onramp_session_id and update.status == "fulfillment_complete":
                    await reopen_check(sql, applied.onramp_session_id, utcnow())
        async with self.database.sessions() as db:
            session = await SessionRepository(db).get_one_or_none(session_id)
            if session is None:  # pragma: no cover - deleted meanwhile
                raise NotFound("No such session.")
            return schemas.summary(session)


def _new_session(request: SessionRequest, livemode: bool) -> NewSession:
    return NewSession(
        livemode=livemode,
        wallet_address=request.wallet_address,
        source_amount=request.source_amount,
        source_currency=request.source_currency,
        destination_currency=request.destination_currency,
        destination_network=request.destination_network,
    )


def apply_stripe_session(
    session: OnrampSession | NewSession, stripe_session: dict[str, Any]
) -> bool:
    """Bring `session` forward to what Stripe's object says; true if anything changed.

    The status only moves forward (state.advance_status); fulfilment details are taken
    once Stripe reports them and never unset.
    """
    before = (session.stripe_session_id, session.status, session.transaction_hash)
    session.stripe_session_id = session.stripe_session_id or stripe_session["id"]
    session.client_secret = session.client_secret or stripe_session.get("client_secret")
    session.livemode = bool(stripe_session.get("livemode", False))
    session.status = state.advance_status(session.status, str(stripe_session.get("status")))
    details = stripe_session.get("transaction_details") or {}
    if session.status == "fulfillment_complete":
        session.transaction_hash = session.transaction_hash or transaction_id(
            details.get("transaction_id")
        )
        session.destination_amount = session.destination_amount or details.get("destination_amount")
    changed = before != (session.stripe_session_id, session.status, session.transaction_hash)
    if changed:
        session.updated_at = utcnow()
    return changed


@dataclass(frozen=True)
class Page:
    sessions: list[OnrampSession]
    next_cursor: str | None


async def list_sessions(
    db: AsyncSession,
    *,
    wallet_address: str | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> Page:
    """One page, newest first; `next_cursor` is None on the last page."""
    rows = await SessionRepository(db).list(
        wallet_address=wallet_address,
        status=check_status_filter(status),
        before_id=decode_cursor(cursor),
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1].id) if more else None)
