"""The delivery worker: claims due checks, asks each session's chain, records verdicts.

Checks are rows (`delivery_checks`), so nothing is lost to a restart. A claim is one
UPDATE that leases due rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL), renewed while the
round runs (`lease.py`), so several workers, in `onramp worker` processes or inside
`onramp serve`, never check one session at the same time. A round reads its sessions
together, asks every network once for all of its transactions, and records every
verdict, with the transfers it credits, in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta

import structlog

from service.chain import metrics
from service.chain.destinations import accepted_destinations
from service.chain.rpc import RETRY_PASSES, Chains, ChainUnavailable
from service.columns import utcnow
from service.database import Database
from service.delivery import chain, checks, decisions, ledger
from service.delivery.checks import CheckOutcome, ClaimedCheck
from service.delivery.decisions import Checked
from service.delivery.lease import RoundClaims
from service.delivery.metrics import heartbeat, verdicts_reached
from service.delivery.verify import Seen, Verifier, looks_like_hash, verify_delivery
from service.errors import DatabaseUnavailable
from service.merchant_webhooks import outbox
from service.onramp.lifecycle import DeliveryStatus
from service.onramp.models import SessionRow
from service.onramp.repository import (
    lock_sessions,
    record_verdicts,
    sessions_to_deliver,
)
from service.outages import database_unavailable
from service.settings import ChainSettings
from service.tracing import Span, span

log = structlog.get_logger("onramp.delivery")

# No round is cut short before this, however quick its nodes' time-out.
MINIMUM_ROUND_SECONDS = 60.0
# On SIGTERM a round in progress gets this long to finish before its claims are handed
# back; platforms allow about 10 s between SIGTERM and SIGKILL.
SHUTDOWN_GRACE_SECONDS = 5.0
# A round that failed (a database hiccup, say) leaves its checks alone this long.
FAILED_ROUND_PAUSE_SECONDS = 10.0
# Searching sessions of one round read the ledger through this many connections at most.
LEDGER_READS = 2
# The span of a round that claimed checks, linked to the requests that scheduled them.
ROUND_SPAN = "delivery round"


class DeliveryWorker:
    def __init__(
        self,
        database: Database,
        chains: Chains,
        settings: ChainSettings,
        batch_size: int = 100,
        batched_rpc: bool = True,
        beside: Sequence[Callable[[asyncio.Event], Awaitable[None]]] = (),
    ) -> None:
        self.database = database
        # Jobs of other capabilities run beside the rounds until they stop (the retention
        # job's schedule, the merchant webhooks' dispatcher): given by whoever starts the
        # worker, so that this capability needs none of theirs.
        self.beside = tuple(beside)
        self.chains = chains
        self.settings = settings
        self.destinations = accepted_destinations(settings)
        self.batch_size = batch_size
        # One JSON-RPC batch per network for all claimed transactions instead of three
        # calls each.
        self.batched_rpc = batched_rpc
        # The slowest round: every pass over every node timing out, for the batch and
        # again for the single calls. A round's claims are renewed for that long at most.
        most_nodes = max(len(rpc.urls) for rpc in chains.by_network.values())
        slowest = 2 * RETRY_PASSES * most_nodes * settings.rpc_timeout_seconds
        self.longest_round = timedelta(seconds=max(MINIMUM_ROUND_SECONDS, slowest + 30))
        # A worker starting up (checking in its settings, its first claim) counts as
        # alive for one longest round: a probe during start-up would otherwise see it
        # stalled before its loop had begun.
        self.last_beat = time.monotonic()

    def beat(self) -> None:
        """The loop went round once more: what a liveness probe looks at."""
        self.last_beat = time.monotonic()
        heartbeat.set_to_current_time()

    def is_alive(self) -> bool:
        """Went round its loop within the longest a round may legitimately take."""
        return time.monotonic() - self.last_beat <= self.longest_round.total_seconds()

    async def run(self, stop: asyncio.Event, idle_seconds: float = 1.0) -> None:
        """Check what is due until `stop` is set; rests while nothing is due. A round
        still running when `stop` is set gets `SHUTDOWN_GRACE_SECONDS`, then is cancelled
        and hands its checks back, so another worker takes them at once instead of
        after the lease. The jobs beside the rounds, if any, stop with them."""
        beside = [asyncio.ensure_future(job(stop)) for job in self.beside]
        try:
            await self._rounds(stop, idle_seconds)
        finally:
            for job in beside:
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job

    async def _rounds(self, stop: asyncio.Event, idle_seconds: float) -> None:
        while not stop.is_set():
            self.beat()
            round_ = asyncio.ensure_future(self.run_once())
            stopping = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({round_, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not round_.done():
                    await asyncio.wait({round_}, timeout=SHUTDOWN_GRACE_SECONDS)
                    round_.cancel()
                checked = await round_
            except asyncio.CancelledError:
                if not stop.is_set():
                    raise
                checked = 0
            except DatabaseUnavailable as error:
                # The database is away: say so once a round, without a traceback.
                log.warning("delivery_round_failed", error=error.cause)
                database_unavailable.labels("worker").inc()
                checked = 0
            except Exception:  # nothing may end the worker
                log.exception("delivery_round_failed")
                checked = 0
            finally:
                stopping.cancel()
            if checked == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), idle_seconds)

    async def run_once(self) -> int:
        """Claim the due checks and decide them together; how many were checked."""
        now = utcnow()
        lease = RoundClaims.lease_from(now)
        async with self.database.transaction() as sql:
            session_ids = await checks.claim_due(sql, now, lease, self.batch_size)
        if session_ids:
            await self._claimed_round(session_ids, lease)
        return len(session_ids)

    async def check(self, session_id: str) -> Checked:
        """Decide one session now, whether or not its check is due, unless a worker is
        deciding it at this moment."""
        now = utcnow()
        lease = RoundClaims.lease_from(now)
        async with self.database.transaction() as sql:
            claimed = await checks.claim_one(sql, session_id, now, lease)
        if not claimed:
            return Checked(DeliveryStatus.PENDING, "a worker is checking this session right now")
        decided = await self._claimed_round([session_id], lease)
        return decided.get(session_id) or Checked(DeliveryStatus.PENDING, "checked again meanwhile")

    async def _claimed_round(self, session_ids: list[str], lease: datetime) -> dict[str, Checked]:
        """Decide the claimed checks, renewing their lease meanwhile."""
        claims = RoundClaims(self.database, session_ids, lease, self.longest_round)
        with span(ROUND_SPAN, **{"delivery.checks": len(session_ids)}) as round_:
            async with self._handing_back_on_failure(claims), claims.renewed():
                return await self._decide_and_record(session_ids, claims, round_)

    @contextlib.asynccontextmanager
    async def _handing_back_on_failure(self, claims: RoundClaims) -> AsyncIterator[None]:
        """Claims of a round that was cancelled (shutdown) are due again at once; those
        of a round that failed, after a pause. Either way not after the lease."""
        try:
            yield
        except BaseException as error:
            cancelled = isinstance(error, asyncio.CancelledError)
            pause = 0.0 if cancelled else FAILED_ROUND_PAUSE_SECONDS
            due = utcnow() + timedelta(seconds=pause)
            with contextlib.suppress(Exception):
                async with claims.standing() as lease, self.database.transaction() as sql:
                    await checks.hand_back(sql, lease, due)
                log.info("delivery_claims_handed_back", cancelled=cancelled)
            raise

    async def _decide_and_record(
        self, session_ids: list[str], claims: RoundClaims, round_: Span
    ) -> dict[str, Checked]:
        async with self.database.transaction() as sql:
            sessions = await sessions_to_deliver(sql, session_ids)
            claimed = await checks.read_checks(sql, session_ids)
        for session_id, claim in claimed.items():
            round_.link(claim.traceparent, **{"onramp.session_id": session_id})
        pairs = [(sessions[i], claimed[i]) for i in session_ids if i in sessions and i in claimed]
        seen = await self._observe_together([s for s, _ in pairs]) if self.batched_rpc else {}
        now = utcnow()
        ledger_reads = asyncio.Semaphore(LEDGER_READS)
        decided = await asyncio.gather(
            *(self._decide(s, c, seen, now, ledger_reads) for s, c in pairs)
        )
        results = {session.id: result for (session, _), result in zip(pairs, decided, strict=True)}
        recorded = await self._record(results, sessions, claimed, now, claims)
        for result in recorded.values():
            metrics.delivery_checks.labels(result.status).inc()
        verdicts_reached(recorded, sessions, claimed, now)
        if recorded:
            log.info(
                "delivery_round",
                checked=len(recorded),
                confirmed=sum(r.status == DeliveryStatus.CONFIRMED for r in recorded.values()),
            )
        return recorded

    async def _observe_together(self, sessions: list[SessionRow]) -> dict[str, Seen]:
        """Every named transaction, in one batch per network."""
        by_network: dict[str, list[str]] = {}
        for session in sessions:
            if session.transaction_hash and looks_like_hash(session.transaction_hash):
                by_network.setdefault(session.destination_network, []).append(
                    session.transaction_hash
                )

        async def observe(network: str, hashes: list[str]) -> tuple[str, Seen]:
            rpc = self.chains.by_network.get(network)
            if rpc is None:
                return network, {}
            try:
                return network, await chain.observe_transactions(rpc, hashes)
            except ChainUnavailable:
                return network, {}  # each check then asks on its own, and says so

        return dict(await asyncio.gather(*(observe(n, h) for n, h in by_network.items())))

    async def _decide(
        self,
        session: SessionRow,
        check: ClaimedCheck,
        seen: dict[str, Seen],
        now: datetime,
        ledger_reads: asyncio.Semaphore,
    ) -> Checked:
        network, currency = session.destination_network, session.destination_currency
        destination = self.destinations.get((network, currency))
        rpc = self.chains.by_network.get(network)
        if destination is None or rpc is None:
            # Configuration, not the chain, is missing: wait for an operator.
            detail = f"{currency} on {network} is not configured on this service"
            return _kept(session, check, detail)
        tolerance = self.settings.delivery_amount_tolerance
        verifier = Verifier(destination, rpc, self.database, tolerance, ledger_reads)
        try:
            result = await verify_delivery(verifier, session, check, seen.get(network, {}))
        except ChainUnavailable as error:
            return _kept(session, check, error.detail)
        return decisions.apply_time_out(
            result,
            check.started,
            now,
            self.settings.delivery_timeout_seconds,
            seen_before=session.delivery_block_hash is not None,
        )

    async def _record(
        self,
        results: dict[str, Checked],
        sessions: dict[str, SessionRow],
        claimed: dict[str, ClaimedCheck],
        now: datetime,
        claims: RoundClaims,
    ) -> dict[str, Checked]:
        """Every verdict of a round, its credits and its checks, in one transaction; only
        where this round's claim still stands, so a stale result never overwrites a newer
        one. The ledger has the last word on which session a transfer proves.

        Locks are taken sessions first, then checks, then credits, as a webhook takes
        them, so the two never wait on each other in a circle.
        """
        proposed = [c for r in results.values() for c in r.credits or ()]
        # Sessions outside the round that may lose a found transfer to it: their rows
        # are locked with the round's. (Read apart: on SQLite a transaction that reads
        # first cannot always start writing.)
        async with self.database.transaction() as sql:
            finders = {h.onramp_session_id for h in (await ledger.holders(sql, proposed)).values()}
        finders -= set(results)
        async with claims.standing() as lease, self.database.transaction() as sql:
            await lock_sessions(sql, sorted({*results, *finders}))
            held = await checks.end_claims(sql, sorted(results), lease)
            results = {i: r for i, r in results.items() if i in held}
            if not results:
                return {}
            incumbents = await ledger.holders(sql, proposed)
            taken = decisions.taken_from_searches(results, incumbents)
            taken = {c: pair for c, pair in taken.items() if pair[1] in finders}
            await checks.search_again(sql, sorted({finder for _, finder in taken.values()}), now)
            await ledger.release(sql, [i for i, r in results.items() if r.credits is not None])
            created = {i: sessions[i].created_at for i in results}
            order = decisions.credit_order(results, created, incumbents)
            await ledger.credit(sql, [(c, i, results[i].found_by_search) for c, i in order], now)
            await ledger.take_over(sql, taken, now)
            holders = await ledger.holders(sql, proposed)
            settled = decisions.one_session_per_transfer(
                results, {c: h.onramp_session_id for c, h in holders.items()}
            )
            await ledger.release(
                sql, [i for i, r in settled.items() if r.credits == () and results[i].credits]
            )
            verdicts = [decisions.verdict_of(i, r) for i, r in settled.items()]
            verdicts += [decisions.taken_over(f, naming) for naming, f in set(taken.values())]
            await record_verdicts(sql, verdicts, now, outbox)
            await checks.settle_checks(
                sql, [_outcome(i, r, claimed[i], now) for i, r in settled.items()]
            )
        return settled


def _kept(session: SessionRow, check: ClaimedCheck, detail: str) -> Checked:
    """Nothing new is known: keep what was decided, and look again later."""
    status = (
        session.delivery_status
        if session.delivery_status != DeliveryStatus.NOT_STARTED
        else DeliveryStatus.PENDING
    )
    return Checked(
        status,
        detail if status == DeliveryStatus.PENDING else session.delivery_detail or detail,
        session.delivered_amount,
        session.delivery_confirmations,
        session.delivery_block_number,
        session.delivery_block_hash,
        check.found_transaction_hash,
        check.search_from_block,
        found_by_search=session.transaction_hash is None,
        check_again=True,
    )


def _outcome(session_id: str, result: Checked, check: ClaimedCheck, now: datetime) -> CheckOutcome:
    found = result.transaction_hash if result.found_by_search else None
    if result.finished:
        return CheckOutcome(session_id, now, now, result.search_from_block, found)
    due = decisions.next_due(now, check.attempts)
    return CheckOutcome(session_id, None, due, result.search_from_block, found)
