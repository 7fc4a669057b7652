"""The tables seen through the ORM models, or one plain statement: how tests look at
(and change) what the service stored, independently of the service's own code."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from service.database import Database
from service.settings import DatabaseSettings
from service.sql import Sql


def orm_session(database: Database) -> AsyncSession:
    return AsyncSession(database.engine, expire_on_commit=False)


async def run_sql(database_url: str, statement: str, **params: Any) -> list[tuple[Any, ...]]:
    """One statement on the database at `database_url`, on its own connection: a test
    changing rows behind the service's back, as an outage or a restore would."""
    database = Database(DatabaseSettings(DATABASE_URL=database_url))
    try:
        return await database.run_alone(Sql(text(statement)), params)
    finally:
        await database.dispose()
