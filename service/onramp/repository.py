"""Persistence of onramp sessions and of the idempotency keys of their create calls."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

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


class IdempotencyRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    def _this_key(self, wallet_address: str, key: str) -> Any:
        return (col(IdempotencyKey.wallet_address) == wallet_address) & (
            col(IdempotencyKey.key) == key
        )

    async def claim_new(
        self, wallet_address: str, key: str, fingerprint: str, now: datetime, ip: str | None
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
                customer_ip=ip,
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
