"""Every statement on `operator_actions`: an insert, in the transaction of the change
it records, and pages of the trail newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import bindparam, insert, select
from sqlmodel import col

from service.audit.models import ActionRecord, OperatorAction
from service.columns import table_of
from service.database import Database
from service.sql import Sql, SqlTransaction

A = OperatorAction
ACTIONS = table_of(OperatorAction)
_ROW = [ACTIONS.c[name] for name in ActionRecord.__struct_fields__]
# Each column from the parameter `new_<column>` (a parameter may not be named as its column).
_INSERT = Sql(insert(ACTIONS).values({column: bindparam(f"new_{column.key}") for column in _ROW}))


async def insert_action(sql: SqlTransaction, record: ActionRecord) -> None:
    values = msgspec.structs.asdict(record)
    await sql.execute(_INSERT, {f"new_{name}": value for name, value in values.items()})


def _newest(since: bool, before: bool) -> Sql:
    conditions = []
    if since:
        conditions.append(col(A.at) >= bindparam("since"))
    if before:
        conditions.append(col(A.id) < bindparam("before"))
    chosen = select(*_ROW).where(*conditions).order_by(col(A.id).desc())
    return Sql(chosen.limit(bindparam("limit")))


# One statement per combination of filters, each with a plan of its own.
_NEWEST = {
    (since, before): _newest(since, before) for since in (False, True) for before in (False, True)
}


async def newest(
    database: Database, *, since: datetime | None, before_id: str | None, limit: int
) -> list[ActionRecord]:
    """Up to `limit` rows newest first: at or after `since`, older than `before_id`."""
    params: dict[str, Any] = {"limit": limit}
    if since is not None:
        params["since"] = since
    if before_id is not None:
        params["before"] = before_id
    statement = _NEWEST[(since is not None, before_id is not None)]
    return [ActionRecord(*row) for row in await database.run_alone(statement, params)]
