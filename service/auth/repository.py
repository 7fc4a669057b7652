"""Persistence of nonces. The single-use guarantee lives in `consume`'s one UPDATE."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from service.auth.models import AuthNonce


class NonceRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(self, nonce: AuthNonce) -> None:
        self.db.add(nonce)
        await self.db.flush()

    async def get_one_or_none(self, nonce: str) -> AuthNonce | None:
        return await self.db.get(AuthNonce, nonce)

    async def consume(self, nonce: str, now: datetime) -> bool:
        """Mark the nonce used; true only for the one caller whose UPDATE changed the row.

        A concurrent second caller waits on the row lock (PostgreSQL) or the write lock
        (SQLite), then finds `used_at` set and changes nothing.
        """
        result = await self.db.exec(
            update(AuthNonce)
            .where(
                AuthNonce.nonce == nonce,  # type: ignore[arg-type]
                AuthNonce.used_at.is_(None),  # type: ignore[union-attr]
                AuthNonce.expires_at > now,  # type: ignore[arg-type]
            )
            .values(used_at=now)
        )
        return bool(result.rowcount == 1)

    async def keep_newest(self, wallet_address: str, keep: int) -> int:
        """Delete the wallet's unused nonces but the newest `keep`; how many went."""
        unused = (col(AuthNonce.wallet_address) == wallet_address, col(AuthNonce.used_at).is_(None))
        newest = (
            select(col(AuthNonce.nonce))
            .where(*unused)
            .order_by(col(AuthNonce.issued_at).desc(), col(AuthNonce.nonce).desc())
            .limit(keep)
        )
        result = await self.db.exec(
            delete(AuthNonce).where(*unused, col(AuthNonce.nonce).not_in(newest.scalar_subquery()))
        )
        return int(result.rowcount)

    async def delete_expired(self, before: datetime) -> int:
        result = await self.db.exec(
            delete(AuthNonce).where(AuthNonce.expires_at < before)  # type: ignore[arg-type]
        )
        return int(result.rowcount)
