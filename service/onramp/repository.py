"""Persistence of onramp sessions and of the idempotency keys of their create calls."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from service.onramp import state
from service.onramp.models import IdempotencyKey, OnrampSession

# A request that holds a key longer than this is presumed dead and may be taken over.
IN_FLIGHT_TIMEOUT = timedelta(seconds=60)
KEY_LIFETIME = timedelta(hours=24)


class SessionRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(self, session: OnrampSession) -> OnrampSession:
        self.db.add(session)
        await self.db.flush()
        return session

    async def get_one_or_none(
        self, session_id: str, *, wallet_address: str | None = None, for_update: bool = False
    ) -> OnrampSession | None:
        """A session that exists at Stripe (and belongs to `wallet_address` if given)."""
        query = select(OnrampSession).where(
            col(OnrampSession.id) == session_id,
            col(OnrampSession.stripe_session_id).is_not(None),
        )
        if wallet_address is not None:
            query = query.where(col(OnrampSession.wallet_address) == wallet_address)
        if for_update:
            query = query.with_for_update()
        return (await self.db.exec(query)).first()

    async def get_by_id(self, session_id: str, *, for_update: bool = False) -> OnrampSession | None:
        """Whatever stage the session is at, Stripe id or not."""
        return await self.db.get(OnrampSession, session_id, with_for_update=for_update)

    async def list(
        self,
        *,
        wallet_address: str | None = None,
        status: str | None = None,
        before_id: str | None = None,
        limit: int = 20,
    ) -> list[OnrampSession]:
        """Newest first (ids sort by creation time); `before_id` is the cursor."""
        query = select(OnrampSession).where(col(OnrampSession.stripe_session_id).is_not(None))
        if wallet_address is not None:
            query = query.where(col(OnrampSession.wallet_address) == wallet_address)
        if status is not None:
            query = query.where(col(OnrampSession.status) == status)
        if before_id is not None:
            query = query.where(col(OnrampSession.id) < before_id)
        query = query.order_by(col(OnrampSession.id).desc()).limit(limit)
        return list((await self.db.exec(query)).all())

    async def delete(self, session_id: str) -> None:
        await self.db.exec(delete(OnrampSession).where(col(OnrampSession.id) == session_id))

    async def advance(
        self,
        stripe_session_id: str,
        onramp_session_id: str | None,
        status: str,
        now: datetime,
        transaction_hash: str | None = None,
        destination_amount: str | None = None,
    ) -> str | None:
        """Move the session to `status` if that is a step forward; its id if it moved.

        One conditional UPDATE (compare-and-set on the current status): concurrent
        updates of one session, from any number of processes, serialise on the row and
        each either moves it forward or changes nothing. Never a read-modify-write.
        """
        from_statuses = state.statuses_before(status)
        if not from_statuses:
            return None
        values: dict[str, Any] = {
            "status": status,
            "updated_at": now,
            "stripe_session_id": func.coalesce(OnrampSession.stripe_session_id, stripe_session_id),
        }
        if status == "fulfillment_complete":
            values["transaction_hash"] = func.coalesce(
                OnrampSession.transaction_hash, transaction_hash
            )
            values["destination_amount"] = func.coalesce(
                OnrampSession.destination_amount, destination_amount
            )
            values["delivery_status"] = "pending"
        result = await self.db.exec(
            update(OnrampSession)
            .where(
                self._stripe_or_own(stripe_session_id, onramp_session_id),
                col(OnrampSession.status).in_(from_statuses),
            )
            .values(**values)
            .returning(col(OnrampSession.id))
        )
        return result.scalar_one_or_none()

    async def fill_fulfilment(
        self,
        stripe_session_id: str,
        onramp_session_id: str | None,
        transaction_hash: str | None,
        destination_amount: str | None,
    ) -> str | None:
        """Complete missing fulfilment details of an already complete session."""
        missing = []
        if transaction_hash is not None:
            missing.append(col(OnrampSession.transaction_hash).is_(None))
        if destination_amount is not None:
            missing.append(col(OnrampSession.destination_amount).is_(None))
        if not missing:
            return None
        result = await self.db.exec(
            update(OnrampSession)
            .where(
                self._stripe_or_own(stripe_session_id, onramp_session_id),
                col(OnrampSession.status) == "fulfillment_complete",
                or_(*missing),
            )
            .values(
                transaction_hash=func.coalesce(OnrampSession.transaction_hash, transaction_hash),
                destination_amount=func.coalesce(
                    OnrampSession.destination_amount, destination_amount
                ),
            )
            .returning(col(OnrampSession.id))
        )
        return result.scalar_one_or_none()

    async def find_id(self, stripe_session_id: str, onramp_session_id: str | None) -> str | None:
        query = select(OnrampSession.id).where(
            self._stripe_or_own(stripe_session_id, onramp_session_id)
        )
        return (await self.db.exec(query)).first()

    @staticmethod
    def _stripe_or_own(stripe_session_id: str, onramp_session_id: str | None) -> Any:
        """Found by Stripe's id, or by our own id (from the session's metadata) while the
        create call has not stored Stripe's id yet."""
        by_stripe = col(OnrampSession.stripe_session_id) == stripe_session_id
        if onramp_session_id is None:
            return by_stripe
        return or_(
            by_stripe,
            (col(OnrampSession.id) == onramp_session_id)
            & col(OnrampSession.stripe_session_id).is_(None),
        )


class IdempotencyRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    def _this_key(self, wallet_address: str, key: str) -> Any:
        return (col(IdempotencyKey.wallet_address) == wallet_address) & (
            col(IdempotencyKey.key) == key
        )

    async def claim_new(
        self, wallet_address: str, key: str, fingerprint: str, now: datetime
    ) -> bool:
        """Insert the key as in flight; false when it already exists (one atomic statement)."""
        bind = self.db.get_bind()
        dialect = postgresql if bind.dialect.name == "postgresql" else sqlite
        statement = (
            dialect.insert(IdempotencyKey)
            .values(
                wallet_address=wallet_address,
                key=key,
                fingerprint=fingerprint,
                locked_at=now,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["wallet_address", "key"])
            .returning(col(IdempotencyKey.id))
        )
        return (await self.db.exec(statement)).first() is not None

    async def take_over(
        self, wallet_address: str, key: str, fingerprint: str, now: datetime
    ) -> bool:
        """Lock an unfinished key that no live request holds; true if this caller got it."""
        result = await self.db.exec(
            update(IdempotencyKey)
            .where(
                self._this_key(wallet_address, key),
                col(IdempotencyKey.fingerprint) == fingerprint,
                col(IdempotencyKey.response_status).is_(None),
                or_(
                    col(IdempotencyKey.locked_at).is_(None),
                    col(IdempotencyKey.locked_at) < now - IN_FLIGHT_TIMEOUT,
                ),
            )
            .values(locked_at=now)
        )
        return bool(result.rowcount == 1)

    async def get_one(self, wallet_address: str, key: str) -> IdempotencyKey:
        query = select(IdempotencyKey).where(self._this_key(wallet_address, key))
        return (await self.db.exec(query)).one()

    async def update(self, wallet_address: str, key: str, **values: Any) -> None:
        await self.db.exec(
            update(IdempotencyKey).where(self._this_key(wallet_address, key)).values(**values)
        )

    async def delete_expired(self, now: datetime) -> int:
        result = await self.db.exec(
            delete(IdempotencyKey).where(col(IdempotencyKey.created_at) < now - KEY_LIFETIME)
        )
        return int(result.rowcount)

    async def delete_if_expired(self, wallet_address: str, key: str, now: datetime) -> None:
        await self.db.exec(
            delete(IdempotencyKey).where(
                self._this_key(wallet_address, key),
                col(IdempotencyKey.created_at) < now - KEY_LIFETIME,
            )
        )
