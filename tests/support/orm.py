"""The tables seen through the ORM models: how tests look at what the service stored,
independently of the service's own hand-written SQL."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from service.database import Database


def orm_session(database: Database) -> AsyncSession:
    return AsyncSession(database.engine, expire_on_commit=False)
