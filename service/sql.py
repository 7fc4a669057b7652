"""Hand-written SQL, run as directly as each database allows.

Every request runs a handful of fixed statements; going through the ORM and
SQLAlchemy's execution layer cost more CPU than the database work itself (see
bench/README.md). So each statement is written once, in SQL that PostgreSQL and SQLite
both accept, in the repository module of its table, and runs on psycopg's own
connection pool for PostgreSQL and on SQLAlchemy's connection for SQLite, whose driver
has no faster path. The ORM models define the tables, for migrations and tests.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from psycopg import AsyncConnection as PsycopgConnection
from psycopg.rows import dict_row
from sqlalchemy import TextClause, bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection

from service.columns import UtcDateTime

_NAMED_PARAMETER = re.compile(r"(?<![:\w]):(\w+)")


@dataclass(frozen=True)
class Sql:
    """One statement with `:name` parameters; `datetimes` names the timestamp ones."""

    statement: str
    datetimes: tuple[str, ...] = ()
    clause: TextClause = field(init=False, repr=False, compare=False)
    psycopg_query: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        typed = [bindparam(name, type_=UtcDateTime()) for name in self.datetimes]
        object.__setattr__(self, "clause", text(self.statement).bindparams(*typed))
        escaped = self.statement.replace("%", "%%")
        object.__setattr__(self, "psycopg_query", _NAMED_PARAMETER.sub(r"%(\1)s", escaped))


@lru_cache(maxsize=512)
def _expanded(template: str, name: str, count: int, datetimes: tuple[str, ...]) -> Sql:
    # An empty list matches nothing (`IN ()` is not SQL on PostgreSQL).
    placeholders = ", ".join(f":{name}_{i}" for i in range(count)) or "NULL"
    return Sql(template.replace(f"({name})", f"({placeholders})"), datetimes)


def with_list(
    template: str, name: str, values: Sequence[Any], datetimes: tuple[str, ...] = ()
) -> tuple[Sql, dict[str, Any]]:
    """`... IN (ids)` with one parameter per value, the same on both databases; the
    statement is made once per list length."""
    params = {f"{name}_{i}": value for i, value in enumerate(values)}
    return _expanded(template, name, len(values), datetimes), params


@dataclass(frozen=True)
class BatchDelete:
    """A DELETE of the rows whose `key` a bounded `chosen` SELECT returns (it ends with
    `LIMIT :batch`), for retention, returning the keys that went.

    On PostgreSQL the keys are gathered first (an ARRAY subquery, run once) and the rows
    found by their key: written `key IN (SELECT …)`, the planner joined the keys against
    a sequential scan of the whole table, tens of milliseconds per batch at size
    (bench/README.md). SQLite has no arrays and looks each key up anyway.
    """

    table: str
    key: str
    chosen: str
    datetimes: tuple[str, ...] = ()
    postgres: Sql = field(init=False, repr=False, compare=False)
    sqlite: Sql = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        delete = f"DELETE FROM {self.table} WHERE {self.key}"  # noqa: S608 - constants
        returning = f"RETURNING {self.key}"
        postgres = Sql(f"{delete} = ANY(ARRAY({self.chosen})) {returning}", self.datetimes)
        sqlite = Sql(f"{delete} IN ({self.chosen}) {returning}", self.datetimes)
        object.__setattr__(self, "postgres", postgres)
        object.__setattr__(self, "sqlite", sqlite)

    def on(self, is_postgres: bool) -> Sql:
        return self.postgres if is_postgres else self.sqlite


class SqlTransaction(Protocol):
    # PostgreSQL takes row locks (`FOR UPDATE`); SQLite has one writer at a time.
    is_postgres: bool

    async def scalar(self, sql: Sql, params: Mapping[str, Any]) -> Any:
        """The first column of the first row, or None."""

    async def execute(self, sql: Sql, params: Mapping[str, Any]) -> None: ...

    async def execute_many(self, sql: Sql, params: Sequence[Mapping[str, Any]]) -> None:
        """One statement for each set of parameters (pipelined on PostgreSQL)."""

    async def column(self, sql: Sql, params: Mapping[str, Any]) -> list[Any]:
        """The first column of every row."""

    async def rows(self, sql: Sql, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every row, by column name."""

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run `action` once the transaction has committed, never if it rolls back: for
        what must count only what really happened (metrics)."""


class _AfterCommit:
    def __init__(self) -> None:
        self._actions: list[Callable[[], None]] = []

    def after_commit(self, action: Callable[[], None]) -> None:
        self._actions.append(action)

    def committed(self) -> None:
        for action in self._actions:
            action()


class RollBack(Exception):
    """Raised inside `transaction()` to end it without committing."""


class _OnPsycopg(_AfterCommit):
    is_postgres = True

    def __init__(self, connection: PsycopgConnection[Any]) -> None:
        super().__init__()
        self.connection = connection

    async def scalar(self, sql: Sql, params: Mapping[str, Any]) -> Any:
        cursor = await self.connection.execute(sql.psycopg_query, params)
        row = await cursor.fetchone() if cursor.description else None
        return row[0] if row else None

    async def execute(self, sql: Sql, params: Mapping[str, Any]) -> None:
        await self.connection.execute(sql.psycopg_query, params)

    async def execute_many(self, sql: Sql, params: Sequence[Mapping[str, Any]]) -> None:
        if params:
            await self.connection.cursor().executemany(sql.psycopg_query, params)

    async def column(self, sql: Sql, params: Mapping[str, Any]) -> list[Any]:
        cursor = await self.connection.execute(sql.psycopg_query, params)
        return [row[0] for row in await cursor.fetchall()]

    async def rows(self, sql: Sql, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        cursor = self.connection.cursor(row_factory=dict_row)
        await cursor.execute(sql.psycopg_query, params)
        return await cursor.fetchall()


class _OnSqlAlchemy(_AfterCommit):
    is_postgres = False

    def __init__(self, connection: AsyncConnection) -> None:
        super().__init__()
        self.connection = connection
        self.is_postgres = connection.dialect.name == "postgresql"

    async def scalar(self, sql: Sql, params: Mapping[str, Any]) -> Any:
        result = await self.connection.execute(sql.clause, dict(params))
        row = result.first() if result.returns_rows else None
        return row[0] if row else None

    async def execute(self, sql: Sql, params: Mapping[str, Any]) -> None:
        await self.connection.execute(sql.clause, dict(params))

    async def execute_many(self, sql: Sql, params: Sequence[Mapping[str, Any]]) -> None:
        if params:
            await self.connection.execute(sql.clause, [dict(p) for p in params])

    async def column(self, sql: Sql, params: Mapping[str, Any]) -> list[Any]:
        result = await self.connection.execute(sql.clause, dict(params))
        return [row[0] for row in result.all()]

    async def rows(self, sql: Sql, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        result = await self.connection.execute(sql.clause, dict(params))
        return [dict(row) for row in result.mappings().all()]


@asynccontextmanager
async def psycopg_transaction(connection: PsycopgConnection[Any]) -> AsyncIterator[SqlTransaction]:
    transaction = _OnPsycopg(connection)
    try:
        async with connection.transaction():
            yield transaction
    except RollBack:
        return
    transaction.committed()


@asynccontextmanager
async def sqlalchemy_transaction(connection: AsyncConnection) -> AsyncIterator[SqlTransaction]:
    transaction = _OnSqlAlchemy(connection)
    try:
        async with connection.begin():
            yield transaction
    except RollBack:
        return
    transaction.committed()
