"""Every statement is built from the SQLModel tables and compiled for both databases when
its module loads; SQL text is left only where no expression can say it; the row types
the repositories return are their tables' columns, by name; and a misspelt column is a
type error, not a failing request."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import pkgutil
import re
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

import msgspec
import pytest
from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH
from sqlalchemy import Table, TextClause, bindparam, insert, update
from sqlalchemy.exc import CompileError

import service
from service.audit.models import ActionRecord, OperatorAction
from service.auth.models import AuthNonce
from service.auth.rules import NonceRecord
from service.columns import table_of
from service.delivery.checks import ClaimedCheck
from service.delivery.decisions import Credit, Holder
from service.delivery.models import DeliveryCheck, DeliveryCredit
from service.merchant_webhooks.models import (
    AttemptRow,
    DeliveryAttempt,
    EndpointRow,
    WebhookEndpoint,
)
from service.onramp.idempotency_keys import HeldKey
from service.onramp.lifecycle import LIFECYCLE
from service.onramp.models import IdempotencyKey, OnrampSession, SessionRow
from service.sql import Sql
from service.webhooks.models import WebhookEvent
from service.webhooks.repository import StoredEvent, prune_statements

ROOT = Path(__file__).resolve().parent.parent
SQL_TEXT = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|LISTEN|NOTIFY|PRAGMA)\b")
# The SQL text left in service/, each where no expression can say it.
SQL_TEXT_ALLOWED = {
    "service/database.py": 1,  # SQLite's PRAGMA settings on each new connection
    "service/live/changes.py": 1,  # LISTEN, which has no expression
    "service/schema_changes.py": 1,  # PostgreSQL's own catalogs, for migrations only
}


def statements_of(value: object) -> list[Sql]:
    if isinstance(value, Sql):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in statements_of(item)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [
            s
            for field in dataclasses.fields(value)
            for s in statements_of(getattr(value, field.name))
        ]
    return []


def every_statement() -> list[tuple[str, Sql]]:
    found: list[tuple[str, Sql]] = []
    for module_info in pkgutil.walk_packages(service.__path__, "service."):
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if isinstance(value, types.ModuleType):
                continue
            found += [(f"{module_info.name}.{name}", s) for s in statements_of(value)]
    found += [("prune", s) for s in statements_of(prune_statements(LIFECYCLE))]
    return found


def test_every_statement_is_an_expression_compiled_for_both_databases() -> None:
    statements = every_statement()
    assert len({id(s) for _, s in statements}) > 60
    for name, statement in statements:
        assert not isinstance(statement.expression, TextClause), name
        assert statement.psycopg_query, name
        assert statement.sqlite_query or statement.postgres_only, name


def test_every_statement_is_short_enough_for_psycopgs_cache_of_converted_queries() -> None:
    """psycopg converts a query's `%(name)s` placeholders on every execution unless the
    query is short enough for its cache: past that, the one-statement webhook cost 40%
    more CPU an event (bench/README.md)."""
    for name, statement in every_statement():
        assert len(statement.psycopg_query) <= MAX_CACHED_STATEMENT_LENGTH, name


def test_sql_text_is_left_only_where_no_expression_can_say_it() -> None:
    found: dict[str, int] = {}
    for path in sorted((ROOT / "service").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and SQL_TEXT.match(node.value)
            ):
                key = str(path.relative_to(ROOT))
                found[key] = found.get(key, 0) + 1
    assert found == SQL_TEXT_ALLOWED
    assert sum(found.values()) <= 8


ROW_TYPES: list[tuple[type[Any], type[Any]]] = [
    (SessionRow, OnrampSession),
    (HeldKey, IdempotencyKey),
    (StoredEvent, WebhookEvent),
    (ClaimedCheck, DeliveryCheck),
    (NonceRecord, AuthNonce),
    (Credit, DeliveryCredit),
    (Holder, DeliveryCredit),
    (ActionRecord, OperatorAction),
    (EndpointRow, WebhookEndpoint),
    (AttemptRow, DeliveryAttempt),
]


def fields_of(row_type: type[Any]) -> dict[str, Any]:
    if issubclass(row_type, msgspec.Struct):
        hints = typing.get_type_hints(row_type)
        return {name: hints[name] for name in row_type.__struct_fields__}
    hints = typing.get_type_hints(row_type)
    return {field.name: hints[field.name] for field in dataclasses.fields(row_type)}


@pytest.mark.parametrize(("row_type", "model"), ROW_TYPES, ids=lambda t: t.__name__)
def test_each_row_type_is_columns_of_its_table_by_name(
    row_type: type[Any], model: type[Any]
) -> None:
    table: Table = table_of(model)
    for name, hint in fields_of(row_type).items():
        assert name in table.c, f"{row_type.__name__}.{name} is not a column of {table.name}"
        optional = type(None) in typing.get_args(hint)
        assert optional == bool(table.c[name].nullable), f"{row_type.__name__}.{name}"


def test_a_misspelt_column_is_a_type_error(tmp_path: Path) -> None:
    probe = tmp_path / "misspelt_column.py"
    probe.write_text(
        "from sqlalchemy import select\n"
        "from sqlmodel import col\n"
        "from service.onramp.models import OnrampSession\n"
        "statement = select(col(OnrampSession.stripe_sesion_id))\n"
    )
    # With the project's mypy cache (`./run test` fills it first), only the probe is new.
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(probe)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert checked.returncode == 1, checked.stdout
    assert 'has no attribute "stripe_sesion_id"' in checked.stdout


def test_a_statement_sqlalchemy_would_complete_differently_per_database_is_refused() -> None:
    """A defaulted column left out of an INSERT (SQLAlchemy fills it on SQLite only), or
    a parameter named as a column of an UPDATE (SQLAlchemy would set it), fails when the
    module loads rather than in a request."""
    checks = table_of(DeliveryCheck)
    with pytest.raises(ValueError, match="give every column a value"):
        Sql(insert(checks).values({checks.c.onramp_session_id: bindparam("session")}))
    with pytest.raises(CompileError, match="reserved"):
        Sql(
            update(checks)
            .values({checks.c.attempts: 0})
            .where(checks.c.due_at == bindparam("due_at"))
        )
