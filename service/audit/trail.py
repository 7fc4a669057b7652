"""Writing the trail: exactly one row for each operator action, whatever happens.

An action runs inside `audited(...)`. Where its change is one transaction (the sync
route, `delivery recheck`), it calls `Audit.record(sql, ...)` in that transaction: the
row is committed with the change or rolled back with it. Where the work spans many
transactions (replays, imports and prunes go session by session or batch by batch, so
that no lock is held long), no one of them is the change: the command says how the whole
ended with `Audit.conclude(...)`, and the row is written in a transaction of its own
once the work is over (a run killed half-way leaves its changes without a row; the
next run's row covers them again, as each of these commands is safe to rerun). An action
that raises leaves one `failed` row with the reason, in a transaction of its own, unless
its row was already committed with its change. A read-only key refused a route leaves a
`refused` row (`refusals`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog
from litestar import Request

from service.audit.actions import AUDITED_AS, Action, Outcome, cli_actor, summary
from service.audit.models import ACTION_ID_PREFIX, ActionRecord
from service.audit.repository import insert_action
from service.auth.guards import OperatorIdentity, Refusal
from service.columns import new_id, utcnow
from service.database import Database
from service.logs import scrub
from service.ratelimit import client_ip
from service.sql import SqlTransaction

log = structlog.get_logger("onramp.audit")
_TARGET_LENGTH = 255
_DETAIL_LENGTH = 500


@dataclass
class Audit:
    """One action's row: who, what, on what; how it ended is given by `record` or
    `conclude`, else it ended `ok`."""

    database: Database
    action: str  # an `Action`
    actor: str
    target: str | None
    client_ip: str | None = None
    outcome: Outcome = Outcome.OK
    detail: str | None = None
    written: bool = field(default=False, init=False)

    async def record(
        self, sql: SqlTransaction, outcome: Outcome = Outcome.OK, detail: str | None = None
    ) -> None:
        """The row, in the transaction of the change it records."""
        await insert_action(sql, self._row(outcome, detail))
        sql.after_commit(self._committed)

    def conclude(self, outcome: Outcome, detail: str | None) -> None:
        """How the action ended, for the row written once it is over (work spread over
        many transactions, a dry run, nothing to change)."""
        self.outcome, self.detail = outcome, detail

    def summarise(self, outcomes: Iterable[str], *, dry_run: bool = False) -> None:
        """`conclude` for work of many items: their outcomes counted (`actions.summary`)."""
        self.conclude(*summary(outcomes, dry_run=dry_run))

    async def write_alone(self, outcome: Outcome, detail: str | None) -> None:
        async with self.database.transaction() as sql:
            await self.record(sql, outcome, detail)

    def _committed(self) -> None:
        self.written = True

    def _row(self, outcome: Outcome, detail: str | None) -> ActionRecord:
        if self.written:
            raise RuntimeError(f"{self.action} wrote its audit row already")
        return ActionRecord(
            id=new_id(ACTION_ID_PREFIX),
            at=utcnow(),
            actor=self.actor,
            action=self.action,
            target=None if self.target is None else self.target[:_TARGET_LENGTH],
            outcome=outcome,
            # A reason comes from an exception's message: scrubbed as a log line is.
            detail=None if detail is None else scrub(detail)[:_DETAIL_LENGTH],
            client_ip=self.client_ip,
        )


@asynccontextmanager
async def audited(
    database: Database,
    action: str,
    *,
    actor: str,
    target: str | None,
    client_ip: str | None = None,
) -> AsyncIterator[Audit]:
    """The action inside the block gets exactly one row (the module says how)."""
    audit = Audit(database, action, actor, target, client_ip)
    try:
        yield audit
    except Exception as error:
        if not audit.written:
            await _write_if_possible(audit, Outcome.FAILED, _reason(error))
        raise
    if not audit.written:
        await audit.write_alone(audit.outcome, audit.detail)


async def _write_if_possible(audit: Audit, outcome: Outcome, detail: str) -> None:
    """The row of an action that ends in a refusal or an error, if the database takes
    it: that answer is what the caller must get, not a second error about the trail."""
    try:
        await audit.write_alone(outcome, detail)
    except Exception as trail_error:  # reported, then the action's own answer goes on
        log.error("audit_row_lost", action=audit.action, error=type(trail_error).__name__)


def _reason(error: Exception) -> str:
    """An error in a line: its code or type, and what it says."""
    detail = getattr(error, "detail", None) or str(error)
    return f"{getattr(error, 'code', None) or type(error).__name__}: {detail}"


def command_audit(
    database: Database, action: Action, target: str | None
) -> AbstractAsyncContextManager[Audit]:
    """`audited(...)` for an operator command, run by `cli:<the OS user>`."""
    return audited(database, action, actor=cli_actor(), target=target)


def route_audit(
    request: Request[Any, Any, Any], database: Database, operator: OperatorIdentity
) -> AbstractAsyncContextManager[Audit]:
    """`audited(...)` for an operator route call: the action the route declares
    (`opt={AUDITED_AS: ...}`), the key's name, the path's parameters as the target."""
    action, target = _route_action(request)
    return audited(
        database, action, actor=operator.name, target=target, client_ip=client_ip(request)
    )


def refusals(database: Database) -> Refusal:
    """What the operator guard calls when it refuses a read-only key a route: the
    `refused` row, in a transaction of its own (nothing else was done)."""

    async def refused(request: Request[Any, Any, Any], operator: OperatorIdentity) -> None:
        action, target = _route_action(request)
        audit = Audit(database, action, operator.name, target, client_ip(request))
        await _write_if_possible(audit, Outcome.REFUSED, "a read-only key")

    return refused


def _route_action(request: Request[Any, Any, Any]) -> tuple[str, str | None]:
    """The route's declared action (tests/audit holds every operator route that changes
    things to declaring one), else its method and path."""
    action = request.route_handler.opt.get(AUDITED_AS)
    if not isinstance(action, Action):
        action = f"{request.method} {request.scope['path']}"[:64]
    target = "/".join(str(value) for value in request.path_params.values())
    return action, target or None
