"""Creating a session, idempotently and surviving crashes.

Creating a session spans two systems, so it runs as committed steps, Stripe-style:

1. claim   the client's Idempotency-Key (one INSERT … ON CONFLICT), or take over a key
           whose earlier request died, or answer from what the key already holds;
2. start   commit the local session, so its id exists before Stripe hears of it;
3. create  at Stripe with an idempotency key derived from that id: however often this
           step is repeated (SDK retries, client retries, a retry after a crash), Stripe
           makes one session;
4. finish  store Stripe's answer on the session and the response on the key, together.

A retry resumes at the first step not committed. Requests without a key run the same
steps; a failed one leaves nothing behind. In the usual call (a new key, or none, and
no webhook before Stripe has answered) claim and start are one statement and finish
another; a webhook that came first makes finish merge under the session's row lock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import msgspec
import structlog

from service.chain.destinations import Destinations
from service.columns import utcnow
from service.database import Database
from service.errors import Conflict, NotFound, Unprocessable
from service.onramp import idempotency_keys as keys
from service.onramp import metrics, repository, schemas
from service.onramp.idempotency_keys import Answer, HeldKey
from service.onramp.models import SessionRow
from service.onramp.rules import SessionRequest, customer_ip, stripe_create_params
from service.onramp.stripe_answer import apply_stripe_session
from service.onramp.stripe_client import StripeOnramp, StripeRefused, StripeUnavailable

log = structlog.get_logger("onramp.sessions")


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
    # The session this very claim stored, exactly as stored (the usual call).
    started: SessionRow | None = None


def stripe_idempotency_key(onramp_session_id: str) -> str:
    return f"onramp-create-{onramp_session_id}"


class SessionCreation:
    def __init__(
        self, database: Database, stripe: StripeOnramp, destinations: Destinations
    ) -> None:
        self.database = database
        self.stripe = stripe
        self.destinations = destinations

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
        wallet, fingerprint = request.wallet_address, request.fingerprint()
        if await keys.claim_and_start(self.database, wallet, key, fingerprint, now, ip, session):
            return _Claim(key, session.id, ip, started=session)
        return await self._claim_existing(request, key, ip)

    async def _claim_existing(
        self, request: SessionRequest, key: str, ip: str | None
    ) -> _Claim | Created:
        now = utcnow()
        wallet, fingerprint = request.wallet_address, request.fingerprint()
        async with self.database.transaction() as sql:
            await keys.delete_if_expired(sql, wallet, key, now)
            if await keys.claim(sql, wallet, key, fingerprint, now, ip):
                return _Claim(key, None, ip)
            taken = await keys.take_over(sql, wallet, key, fingerprint, now)
            held = await keys.read(sql, wallet, key)
        if taken:
            return _Claim(key, held.onramp_session_id, held.customer_ip)
        return self._answer_from(held, fingerprint)

    def _answer_from(self, held: HeldKey, fingerprint: str) -> Created:
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

    async def _start(self, request: SessionRequest, claim: _Claim | None) -> SessionRow:
        session = _new_session(request, self.stripe.livemode)
        if claim is None:
            await repository.insert_alone(self.database, session)
            return session
        async with self.database.transaction() as sql:
            await repository.insert(sql, session)
            await keys.name_session(sql, request.wallet_address, claim.key, session.id)
        return session

    async def _create_at_stripe(
        self,
        session_id: str,
        request: SessionRequest,
        claim: _Claim | None,
        ip: str | None,
        started: SessionRow | None = None,
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
        if started is not None:
            # One guarded UPDATE on a session this call stored and nothing has touched.
            apply_stripe_session(started, stripe_session)
            body = schemas.public(started)
            held = None if claim is None else (request.wallet_address, claim.key, _ok(body))
            if await keys.finish_as_started(self.database, started, held):
                return self._created(body)
        async with self.database.transaction() as sql:
            # The row lock keeps a webhook for this session waiting until Stripe's answer
            # is stored, so neither overwrites the other.
            session = await repository.lock(sql, session_id)
            if session is None:  # pragma: no cover - only a manual delete gets here
                raise NotFound("The session disappeared while it was being created.")
            apply_stripe_session(session, stripe_session)
            await repository.store_stripe_answer(sql, session)
            body = schemas.public(session)
            if claim is not None:
                await keys.store_answer(sql, request.wallet_address, claim.key, _ok(body))
        return self._created(body)

    def _created(self, body: schemas.SessionPublic) -> Created:
        log.info("session_created", session_id=body.id, stripe_session_id=body.stripe_session_id)
        metrics.sessions_created.inc()
        return Created(body)

    def _wallet_key(self, request: SessionRequest) -> str:
        """Stripe's name for the network in `wallet_addresses` (`base_network` for Base)."""
        pair = (request.destination_network, request.destination_currency)
        destination = self.destinations.get(pair)
        return destination.stripe_wallet_key if destination else request.destination_network

    async def _abandon(
        self,
        session_id: str,
        request: SessionRequest,
        claim: _Claim | None,
        refused: StripeRefused | None,
    ) -> None:
        """After a refusal nothing remains but the stored answer; after an outage, a
        keyed request keeps its session so that the retry resumes with it."""
        async with self.database.transaction() as sql:
            if refused is not None or claim is None:
                await repository.delete(sql, session_id)
            if claim is None:
                return
            if refused is None:
                await keys.release(sql, request.wallet_address, claim.key)
                return
            body = {"detail": refused.detail, "stripeCode": refused.extra.get("stripeCode")}
            answer = Answer(refused.status, json.dumps(body), None)
            await keys.store_answer(sql, request.wallet_address, claim.key, answer)

    async def _release(self, wallet_address: str, key: str) -> None:
        try:
            async with self.database.transaction() as sql:
                await keys.release(sql, wallet_address, key)
        except Exception:  # the original failure matters more than this clean-up
            log.exception("idempotency_release_failed")


def _ok(body: schemas.SessionPublic) -> Answer:
    return Answer(201, msgspec.json.encode(body).decode(), body.id)


def _new_session(request: SessionRequest, livemode: bool) -> SessionRow:
    return SessionRow(
        livemode=livemode,
        wallet_address=request.wallet_address,
        source_amount=request.source_amount,
        source_currency=request.source_currency,
        destination_currency=request.destination_currency,
        destination_network=request.destination_network,
        destination_amount=request.destination_amount,
    )
