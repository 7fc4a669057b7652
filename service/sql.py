"""Statements built from the tables' models, run as directly as each database allows.

Every request runs a handful of fixed statements; going through the ORM's unit of work
and SQLAlchemy's execution layer on PostgreSQL cost more CPU than the database work
itself (bench/README.md). So each statement is built once, when its module loads, from
the SQLModel tables with SQLAlchemy's expression language (a renamed column fails there
and in mypy), in the repository module of its table; for PostgreSQL it is compiled then
into psycopg's own SQL and run on psycopg's pool, and on SQLite SQLAlchemy's connection
runs the expression (compiled once into its cache), as that driver has no faster path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Protocol, TypeVar

from psycopg import AsyncConnection as PsycopgConnection
from psycopg.rows import dict_row
from sqlalchemy import (
    ColumnElement,
    Delete,
    Select,
    String,
    Table,
    any_,
    bindparam,
    column,
    delete,
    func,
    literal,
    literal_column,
    select,
    table,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import psycopg as postgres_dialect
from sqlalchemy.dialects.sqlite import aiosqlite as sqlite_dialect
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable
from sqlalchemy.sql.schema import Column

from service.notices import Notices, Topic

T = TypeVar("T")
_POSTGRES = postgres_dialect.dialect()  # type: ignore[no-untyped-call]
_SQLITE = sqlite_dialect.dialect()


class Sql:
    """One statement: `statement` for both databases, or `sqlite` for SQLite where the
    two must differ. Parameters are `bindparam`s, passed by name; in an INSERT or UPDATE
    none is named as a column of its table (SQLAlchemy would take it for a value to set).
    """

    __slots__ = (
        "constants",
        "expression",
        "parameters",
        "postgres_only",
        "psycopg_query",
        "sqlite_query",
    )

    def __init__(
        self,
        statement: Executable,
        sqlite: Executable | None = None,
        *,
        postgres_only: bool = False,
    ) -> None:
        self.expression = statement if sqlite is None else sqlite
        self.postgres_only = postgres_only
        compiled = _compile(statement, _POSTGRES)
        # A column left out of an INSERT whose model has a Python default would be filled
        # by SQLAlchemy on SQLite but sent as NULL to psycopg: every value is the caller's.
        if compiled.insert_prefetch or compiled.update_prefetch:
            raise ValueError(f"{compiled.string}: give every column a value")
        self.psycopg_query: str = compiled.string
        # Values the expression holds itself (`attempts + 1`), sent with the caller's.
        self.constants: dict[str, Any] = {
            name: value
            for name, value in compiled.params.items()
            if name in compiled.binds and not compiled.binds[name].required
        }
        self.parameters: frozenset[str] = frozenset()
        self.sqlite_query = ""
        if postgres_only:  # what SQLite cannot run (a data-modifying CTE): never run there
            return
        on_sqlite = _compile(self.expression, _SQLITE)
        # SQLAlchemy reads an INSERT's or UPDATE's columns from the parameters it is
        # given: it gets the statement's own, and nothing else.
        self.parameters = frozenset(bind.key for bind in on_sqlite.binds.values() if bind.required)
        # Compiled as it will run: a parameter named as a column fails here, at import.
        on_sqlite = _compile(self.expression, _SQLITE, column_keys=[*self.parameters])
        self.sqlite_query = on_sqlite.string

    @classmethod
    def per_dialect(cls, build: Callable[[bool], Executable]) -> Sql:
        """A statement that `build(postgres)` writes for each database (`one_of`)."""
        return cls(build(True), build(False))

    def values(self, params: Mapping[str, Any]) -> Mapping[str, Any]:
        """The parameters as psycopg takes them."""
        return {**self.constants, **params} if self.constants else params

    def sqlite_values(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters as SQLAlchemy takes them on SQLite: the statement's own only,
        and every one of them, as psycopg would insist (an INSERT naming no columns
        would otherwise leave one out)."""
        missing = self.parameters - params.keys()
        if missing:
            raise KeyError(f"parameters not given: {', '.join(sorted(missing))}")
        return {name: value for name, value in params.items() if name in self.parameters}


def _compile(statement: Executable, dialect: Dialect, **options: Any) -> SQLCompiler:
    assert isinstance(statement, ClauseElement)
    compiled = statement.compile(dialect=dialect, **options)
    assert isinstance(compiled, SQLCompiler)
    return compiled


def const(value: str) -> ColumnElement[str]:
    """A constant written into the statement, not sent as a parameter: a predicate that
    a partial index is built on must name its values for the planner to match it (the
    same quoting on both databases)."""
    rendered = literal(value, String).compile(
        dialect=_POSTGRES, compile_kwargs={"literal_binds": True}
    )
    return literal_column(str(rendered), String)


def one_of(column: Any, name: str, postgres: bool) -> ColumnElement[bool]:
    """`column` (of text: ids, hashes) in the list passed as `name`: one array parameter
    on PostgreSQL (one statement whatever the length), an expanding `IN` on SQLite
    (which has no arrays)."""
    if postgres:
        listed: ColumnElement[bool] = column == any_(bindparam(name, type_=ARRAY(String)))
        return listed
    expanded: ColumnElement[bool] = column.in_(bindparam(name, expanding=True))
    return expanded


def insert_into(table: Table, postgres: bool) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can say ON CONFLICT, in each database's own construct."""
    return postgresql.insert(table) if postgres else sqlite.insert(table)


def batch_delete(key: Column[Any], chosen: Select[Any]) -> Sql:
    """A DELETE of the rows whose `key` a bounded `chosen` SELECT returns (with
    `.limit(bindparam("batch"))`), for retention, returning the keys that went.

    On PostgreSQL the keys are gathered first (an ARRAY subquery, run once) and the rows
    found by their key: written `key IN (SELECT …)`, the planner joined the keys against
    a sequential scan of the whole table, tens of milliseconds per batch at size
    (bench/README.md). SQLite has no arrays and looks each key up anyway.
    """
    table = key.table
    gathered: Delete = delete(table).where(key == any_(func.array(chosen.scalar_subquery())))
    looked_up: Delete = delete(table).where(key.in_(chosen))
    return Sql(gathered.returning(key), looked_up.returning(key))


class AfterCommit(Protocol):
    def after_commit(self, action: Callable[[], None]) -> None:
        """Run `action` once the transaction has committed, never if it rolls back: for
        what must count only what really happened (metrics)."""

    def tell(self, topic: Topic[T], item: T) -> None:
        """Tell this process's listeners of `item` once the transaction has committed."""


class SqlTransaction(AfterCommit, Protocol):
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

    def listened(self, topic: Topic[Any]) -> bool:
        """Whether this process listens to `topic` (service/notices.py)."""


class Committing:
    """What waits for a commit. A transaction's (below) runs when it commits; for a
    statement run alone (`Database.run_alone`), which commits as it runs, the caller
    calls `committed()` once it has returned."""

    def __init__(self, notices: Notices | None) -> None:
        self._actions: list[Callable[[], None]] = []
        self._notices = notices

    def after_commit(self, action: Callable[[], None]) -> None:
        self._actions.append(action)

    def listened(self, topic: Topic[Any]) -> bool:
        return self._notices is not None and self._notices.listened(topic)

    def tell(self, topic: Topic[T], item: T) -> None:
        if self._notices is not None:
            self.after_commit(partial(self._notices.tell, topic, item))

    def committed(self) -> None:
        for action in self._actions:
            action()


class RollBack(Exception):
    """Raised inside `transaction()` to end it without committing."""


class _OnPsycopg(Committing):
    is_postgres = True

    def __init__(self, connection: PsycopgConnection[Any], notices: Notices | None) -> None:
        super().__init__(notices)
        self.connection = connection

    async def scalar(self, sql: Sql, params: Mapping[str, Any]) -> Any:
        cursor = await self.connection.execute(sql.psycopg_query, sql.values(params))
        row = await cursor.fetchone() if cursor.description else None
        return row[0] if row else None

    async def execute(self, sql: Sql, params: Mapping[str, Any]) -> None:
        await self.connection.execute(sql.psycopg_query, sql.values(params))

    async def execute_many(self, sql: Sql, params: Sequence[Mapping[str, Any]]) -> None:
        if len(params) == 1:  # a pipeline's set-up and sync cost more than it saves
            await self.execute(sql, params[0])
        elif params:
            await self.connection.cursor().executemany(
                sql.psycopg_query, [sql.values(p) for p in params]
            )

    async def column(self, sql: Sql, params: Mapping[str, Any]) -> list[Any]:
        cursor = await self.connection.execute(sql.psycopg_query, sql.values(params))
        return [row[0] for row in await cursor.fetchall()]

    async def rows(self, sql: Sql, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        cursor = self.connection.cursor(row_factory=dict_row)
        await cursor.execute(sql.psycopg_query, sql.values(params))
        return await cursor.fetchall()


class _OnSqlAlchemy(Committing):
    is_postgres = False

    def __init__(self, connection: AsyncConnection, notices: Notices | None) -> None:
        super().__init__(notices)
        self.connection = connection
        self.is_postgres = connection.dialect.name == "postgresql"

    async def scalar(self, sql: Sql, params: Mapping[str, Any]) -> Any:
        result = await self.connection.execute(sql.expression, sql.sqlite_values(params))
        row = result.first() if result.returns_rows else None
        return row[0] if row else None

    async def execute(self, sql: Sql, params: Mapping[str, Any]) -> None:
        await self.connection.execute(sql.expression, sql.sqlite_values(params))

    async def execute_many(self, sql: Sql, params: Sequence[Mapping[str, Any]]) -> None:
        if params:
            await self.connection.execute(sql.expression, [sql.sqlite_values(p) for p in params])

    async def column(self, sql: Sql, params: Mapping[str, Any]) -> list[Any]:
        result = await self.connection.execute(sql.expression, sql.sqlite_values(params))
        return [row[0] for row in result.all()]

    async def rows(self, sql: Sql, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        result = await self.connection.execute(sql.expression, sql.sqlite_values(params))
        return [dict(row) for row in result.mappings().all()]


@asynccontextmanager
async def psycopg_transaction(
    connection: PsycopgConnection[Any], notices: Notices | None = None
) -> AsyncIterator[SqlTransaction]:
    transaction = _OnPsycopg(connection, notices)
    try:
        async with connection.transaction():
            yield transaction
    except RollBack:
        return
    transaction.committed()


@asynccontextmanager
async def sqlalchemy_transaction(
    connection: AsyncConnection, notices: Notices | None = None
) -> AsyncIterator[SqlTransaction]:
    transaction = _OnSqlAlchemy(connection, notices)
    try:
        async with connection.begin():
            yield transaction
    except RollBack:
        return
    transaction.committed()


# Alembic's own table, which no model declares: the schema revision that readiness and
# `onramp serve` compare with this release's head.
ALEMBIC_VERSION = table("alembic_version", column("version_num"))
SELECT_REVISION = Sql(select(ALEMBIC_VERSION))
