"""The delivery worker: claims due checks, asks the chain, records the verdict.

Checks are rows (`delivery_checks`), so nothing is lost to a restart. A claim is one
UPDATE that leases due rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so several
workers, in `onramp worker` processes or inside `onramp serve`, never check one session
at the same time. A check that cannot decide yet is due again after an exponentially
growing pause, until `DELIVERY_TIMEOUT_SECONDS` after fulfilment.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import structlog
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.chain import metrics
from service.chain.rpc import RETRY_PASSES, ChainRpc, ChainUnavailable
from service.columns import utcnow
from service.database import Database
from service.delivery import chain, rules
from service.delivery.models import DeliveryCheck
from service.delivery.repository import recheck
from service.delivery.tokens import token_for
from service.onramp.models import OnrampSession
from service.settings import ChainSettings
from service.sql import Sql

log = structlog.get_logger("onramp.delivery")
M = TypeVar("M", bound=SQLModel)

MINIMUM_LEASE_SECONDS = 60.0
# On SIGTERM a round in progress gets this long to finish before its claims are handed
# back; platforms allow about 10 s between SIGTERM and SIGKILL.
SHUTDOWN_GRACE_SECONDS = 5.0
# A round that failed (a database hiccup, say) leaves its checks alone this long.
FAILED_ROUND_PAUSE_SECONDS = 10.0
FIRST_PAUSE_SECONDS = 2.0
LONGEST_PAUSE_SECONDS = 300.0
FINAL = frozenset({"confirmed", "mismatch", "failed"})


@dataclass(frozen=True)
class Checked:
    """One check's result, as recorded on the session."""

    status: str
    detail: str
    delivered_amount: str | None = None
    confirmations: int = 0
    block_number: int | None = None
    block_hash: str | None = None
    transaction_hash: str | None = None
    search_from_block: int | None = None
    # The transaction (or a matching transfer) is not on the chain: only this may time out.
    unseen: bool = False


class DeliveryWorker:
    def __init__(
        self,
        database: Database,
        rpc: ChainRpc,
        settings: ChainSettings,
        batch_size: int = 100,
        batched_rpc: bool = True,
    ) -> None:
        self.database = database
        self.rpc = rpc
        self.settings = settings
        self.batch_size = batch_size
        # One JSON-RPC batch for all claimed transactions instead of three calls each.
        self.batched_rpc = batched_rpc
        # A claim outlives the slowest round: every pass over every node timing out, for
        # the batch and again for the single calls.
        slowest = 2 * RETRY_PASSES * len(settings.rpc_urls) * settings.rpc_timeout_seconds
        self.lease = timedelta(seconds=max(MINIMUM_LEASE_SECONDS, slowest + 30))

    async def run(self, stop: asyncio.Event, idle_seconds: float = 1.0) -> None:
        """Check what is due until `stop` is set; rests while nothing is due. A round
        still running when `stop` is set gets `SHUTDOWN_GRACE_SECONDS`, then is cancelled
        and hands its checks back, so another worker takes them at once instead of
        after the lease."""
        while not stop.is_set():
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
            except (OperationalError, InterfaceError) as error:
                # The database is away: say so once a round, without a traceback.
                log.warning("delivery_round_failed", error=type(error).__name__)
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
        """Claim the due checks and decide them together; how many were checked.

        A round costs a handful of queries and two JSON-RPC batch requests whatever its
        size: the sessions are read together, the chain is asked once for every
        transaction, and every verdict is written in one transaction.
        """
        now = utcnow()
        lease = now + self.lease
        claim = _CLAIM_POSTGRES if self.database.pool is not None else _CLAIM_SQLITE
        async with self.database.transaction() as sql:
            session_ids = await sql.column(
                claim, {"now": now, "lease": lease, "limit": self.batch_size}
            )
        if session_ids:
            async with self._handing_back_on_failure(lease):
                await self._decide_and_record(session_ids, lease)
        return len(session_ids)

    async def check(self, session_id: str) -> Checked:
        """Decide one session now, whether or not its check is due, unless a worker is
        deciding it at this moment."""
        now = utcnow()
        lease = now + self.lease
        async with self.database.transaction() as sql:
            claimed = await sql.scalar(_CLAIM_ONE, {"id": session_id, "now": now, "lease": lease})
        if claimed is None:
            return Checked("pending", "a worker is checking this session right now")
        async with self._handing_back_on_failure(lease):
            decided = await self._decide_and_record([session_id], lease)
        return decided.get(session_id) or Checked("failed", "the session no longer exists")

    @contextlib.asynccontextmanager
    async def _handing_back_on_failure(self, lease: datetime) -> AsyncIterator[None]:
        """Claims of a round that was cancelled (shutdown) are due again at once; those
        of a round that failed, after a pause. Either way not after the whole lease."""
        try:
            yield
        except BaseException as error:
            cancelled = isinstance(error, asyncio.CancelledError)
            pause = 0.0 if cancelled else FAILED_ROUND_PAUSE_SECONDS
            due = utcnow() + timedelta(seconds=pause)
            with contextlib.suppress(Exception):
                async with self.database.transaction() as sql:
                    await sql.execute(_HAND_BACK, {"lease": lease, "due": due})
                log.info("delivery_claims_handed_back", cancelled=cancelled)
            raise

    async def _decide_and_record(
        self, session_ids: list[str], lease: datetime
    ) -> dict[str, Checked]:
        async with self.database.sessions() as db:
            sessions = await _by_id(db, OnrampSession, col(OnrampSession.id), session_ids)
            checks = await _by_id(
                db, DeliveryCheck, col(DeliveryCheck.onramp_session_id), session_ids
            )
        hashes = [s.transaction_hash for s in sessions.values() if s.transaction_hash]
        seen = await self._observe_together(hashes) if self.batched_rpc else {}
        now = utcnow()
        pairs = [(sessions[i], checks[i]) for i in session_ids if i in sessions and i in checks]
        decided = await asyncio.gather(*(self._decide(s, c, seen, now) for s, c in pairs))
        results = _one_session_per_found_transfer(
            {session.id: result for (session, _), result in zip(pairs, decided, strict=True)},
            {session.id: session.transaction_hash for session, _ in pairs},
        )
        await self._record(results, now, lease)
        for session_id, result in results.items():
            metrics.delivery_checks.labels(result.status).inc()
            log.debug("delivery_checked", session_id=session_id, status=result.status)
        if results:
            log.info(
                "delivery_round",
                checked=len(results),
                confirmed=sum(r.status == "confirmed" for r in results.values()),
            )
        return results

    async def _observe_together(self, hashes: list[str]) -> dict[str, chain.Observation]:
        try:
            return await chain.observe_transactions(
                self.rpc, [h for h in hashes if _looks_like_hash(h)]
            )
        except ChainUnavailable:
            return {}  # each check then asks on its own, and says so

    async def _decide(
        self,
        session: OnrampSession,
        check: DeliveryCheck,
        seen: dict[str, chain.Observation],
        now: datetime,
    ) -> Checked:
        try:
            result = await self._observe(session, check, seen)
        except ChainUnavailable as error:
            # Nothing new is known: keep what was, and keep waiting for a node.
            return Checked(
                "pending",
                error.detail,
                session.delivered_amount,
                session.delivery_confirmations,
                session.delivery_block_number,
                session.delivery_block_hash,
                session.transaction_hash,
                check.search_from_block,
            )
        timed_out = now - check.created_at > timedelta(
            seconds=self.settings.delivery_timeout_seconds
        )
        if result.status == "pending" and result.unseen and timed_out:
            result = Checked(
                "failed",
                f"not decided within {self.settings.delivery_timeout_seconds} s: {result.detail}",
                result.delivered_amount,
                result.confirmations,
                result.block_number,
                result.block_hash,
                result.transaction_hash,
                result.search_from_block,
            )
        return result

    async def _observe(
        self, session: OnrampSession, check: DeliveryCheck, seen: dict[str, chain.Observation]
    ) -> Checked:
        token = token_for(session.destination_network, session.destination_currency, self.settings)
        if token is None:
            pair = f"{session.destination_currency} on {session.destination_network}"
            return Checked("failed", f"no contract for {pair} on chain {self.settings.chain_id}")
        if session.destination_amount is None:
            return Checked("pending", "Stripe has not reported the delivered amount yet")
        try:
            expected = rules.to_units(session.destination_amount, token.decimals)
            tolerance = rules.to_units(str(self.settings.delivery_amount_tolerance), token.decimals)
        except ValueError as error:
            return Checked("failed", str(error))
        tx_hash, search_from = session.transaction_hash, check.search_from_block
        if tx_hash is None:
            tx_hash, search_from = await self._search(session, token.address, expected, search_from)
            if tx_hash is None:
                return Checked(
                    "pending",
                    "no matching transfer to the wallet yet",
                    search_from_block=search_from,
                    unseen=True,
                )
        if not _looks_like_hash(tx_hash):
            return Checked("failed", f"{tx_hash!r} is not a transaction hash")
        observed = seen.get(tx_hash) or await chain.observe_transaction(self.rpc, tx_hash)
        if not observed.found:
            return Checked(
                "pending",
                "the transaction is not on the chain (yet)",
                transaction_hash=tx_hash,
                search_from_block=search_from,
                unseen=True,
            )
        verdict = rules.judge(
            reverted=observed.reverted,
            transfers=observed.transfers,
            token=token.address,
            wallet=session.wallet_address,
            expected_units=expected,
            tolerance_units=tolerance,
            decimals=token.decimals,
            confirmations=observed.confirmations,
            required_confirmations=token.confirmations,
        )
        return Checked(
            verdict.status,
            verdict.detail,
            verdict.delivered_amount,
            observed.confirmations,
            observed.block_number,
            observed.block_hash,
            tx_hash,
            search_from,
        )

    async def _search(
        self, session: OnrampSession, token: str, expected: int, search_from: int | None
    ) -> tuple[str | None, int]:
        """A transfer of exactly the expected amount to the wallet since the session began."""
        if search_from is None:
            search_from = await chain.first_block_at(self.rpc, int(session.created_at.timestamp()))
        candidates = [
            tx_hash
            for tx_hash, transfer in await chain.transfers_to(
                self.rpc, token, session.wallet_address, search_from
            )
            if transfer.value == expected
        ]
        if not candidates:
            return None, search_from
        async with self.database.sessions() as db:
            query = select(OnrampSession.transaction_hash).where(
                col(OnrampSession.transaction_hash).in_(candidates),
                col(OnrampSession.id) != session.id,
            )
            credited = set((await db.exec(query)).all())
        # One transfer proves one session: skip those already credited to another.
        free = [tx_hash for tx_hash in candidates if tx_hash not in credited]
        return (free[0] if free else None), search_from

    async def _record(self, results: dict[str, Checked], now: datetime, lease: datetime) -> None:
        """Every verdict of a round, on its session and its check, in one transaction;
        only where this round's claim still stands, so a stale result never overwrites
        a newer one."""
        ids = list(results)
        async with self.database.sessions() as db, db.begin():
            sessions = await _by_id(db, OnrampSession, col(OnrampSession.id), ids)
            checks = await _by_id(db, DeliveryCheck, col(DeliveryCheck.onramp_session_id), ids)
            for session_id, result in results.items():
                session, check = sessions.get(session_id), checks.get(session_id)
                if session is None or check is None or check.claimed_until != lease:
                    continue
                session.delivery_status = result.status
                session.delivery_detail = result.detail
                session.delivery_checked_at = now
                session.delivery_confirmations = result.confirmations
                session.delivery_block_number = result.block_number
                session.delivery_block_hash = result.block_hash
                session.delivered_amount = result.delivered_amount
                session.transaction_hash = session.transaction_hash or result.transaction_hash
                session.updated_at = now
                check.claimed_until = None
                check.search_from_block = result.search_from_block
                if result.status in FINAL:
                    check.finished_at = now
                else:
                    pause = FIRST_PAUSE_SECONDS * 2 ** max(0, check.attempts - 1)
                    check.due_at = now + timedelta(seconds=min(LONGEST_PAUSE_SECONDS, pause))


def _one_session_per_found_transfer(
    results: dict[str, Checked], known: dict[str, str | None]
) -> dict[str, Checked]:
    """A transfer found by searching proves one session: two sessions of one round that
    found the same one keep it for the first and search again for the other."""
    taken: set[str] = set()
    for session_id, result in results.items():
        found = result.transaction_hash
        if known.get(session_id) is None and found is not None:
            if found in taken:
                results[session_id] = Checked(
                    "pending",
                    "no matching transfer to the wallet yet",
                    search_from_block=result.search_from_block,
                    unseen=True,
                )
            taken.add(found)
    return results


async def _by_id(db: AsyncSession, model: type[M], key: Any, ids: list[str]) -> dict[str, M]:
    rows = (await db.exec(select(model).where(key.in_(ids)))).all()
    return {getattr(row, key.key): row for row in rows}


@dataclass(frozen=True)
class Rechecked:
    session_id: str
    status: str
    detail: str


async def recheck_sessions(
    database: Database,
    worker: DeliveryWorker,
    *,
    session_ids: list[str] | None = None,
    delivery_status: str | None = None,
) -> list[Rechecked]:
    """Check chosen fulfilled sessions now, decided ones included (`onramp delivery recheck`)."""
    query = select(OnrampSession.id).where(col(OnrampSession.status) == "fulfillment_complete")
    if session_ids:
        query = query.where(col(OnrampSession.id).in_(session_ids))
    if delivery_status:
        query = query.where(col(OnrampSession.delivery_status) == delivery_status)
    async with database.sessions() as db:
        chosen = list((await db.exec(query)).all())
    now = utcnow()
    async with database.transaction() as sql:
        for session_id in chosen:
            await recheck(sql, session_id, now)
    results = []
    for session_id in chosen:
        checked = await worker.check(session_id)
        results.append(Rechecked(session_id, checked.status, checked.detail))
    return results


class InProcessWorker:
    """The worker as a task of the API process (`serve`), started and stopped with it."""

    def __init__(self, worker: DeliveryWorker) -> None:
        self.worker = worker
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.worker.run(self._stop))

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task


def _looks_like_hash(value: str) -> bool:
    return (
        len(value) == 66
        and value.startswith("0x")
        and all(c in "0123456789abcdefABCDEF" for c in value[2:])
    )


_DUE = (
    "SELECT onramp_session_id FROM delivery_checks"
    " WHERE finished_at IS NULL AND due_at <= :now"
    " AND (claimed_until IS NULL OR claimed_until < :now)"
    " ORDER BY due_at LIMIT :limit"
)
_CLAIM = (
    "UPDATE delivery_checks SET claimed_until = :lease, attempts = attempts + 1"
    " WHERE onramp_session_id IN ({due}) RETURNING onramp_session_id"
)
# PostgreSQL: concurrent workers skip each other's rows instead of waiting on them.
_CLAIM_POSTGRES = Sql(
    _CLAIM.format(due=_DUE + " FOR UPDATE SKIP LOCKED"), datetimes=("now", "lease")
)
# SQLite has one writer at a time, so the UPDATE itself is the claim.
_CLAIM_SQLITE = Sql(_CLAIM.format(due=_DUE), datetimes=("now", "lease"))

_HAND_BACK = Sql(
    "UPDATE delivery_checks SET claimed_until = NULL, due_at = :due"
    " WHERE claimed_until = :lease AND finished_at IS NULL",
    datetimes=("lease", "due"),
)

# One session, for a check on an operator's word: taken only if no worker holds it.
_CLAIM_ONE = Sql(
    "UPDATE delivery_checks SET claimed_until = :lease, attempts = attempts + 1"
    " WHERE onramp_session_id = :id AND (claimed_until IS NULL OR claimed_until < :now)"
    " RETURNING onramp_session_id",
    datetimes=("now", "lease"),
)
