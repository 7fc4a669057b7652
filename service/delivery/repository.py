"""Persistence of delivery checks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession

from service.delivery.models import DeliveryCheck


class DeliveryCheckRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def schedule(self, onramp_session_id: str, now: datetime) -> None:
        """Make sure a check is due for the session; scheduling twice changes nothing."""
        dialect = postgresql if self.db.get_bind().dialect.name == "postgresql" else sqlite
        await self.db.exec(
            dialect.insert(DeliveryCheck)
            .values(onramp_session_id=onramp_session_id, due_at=now, attempts=0, created_at=now)
            .on_conflict_do_nothing(index_elements=["onramp_session_id"])
        )
