"""The audit trail's table, and the one shape its rows have in code."""

from __future__ import annotations

from datetime import datetime

import msgspec
from sqlalchemy import Index, String
from sqlmodel import Field, SQLModel

from service.audit.actions import Outcome
from service.columns import UtcDateTime, new_id, utcnow

ACTION_ID_PREFIX = "opa"


class OperatorAction(SQLModel, table=True):
    """One operator action: who (a key's name, or `cli:<user>`), what, on what, and how
    it ended. Only ever inserted, never updated, and no retention deletes it."""

    __tablename__ = "operator_actions"
    # `since`: the trail from a moment on.
    __table_args__ = (Index("ix_operator_actions_at", "at"),)

    id: str = Field(
        default_factory=lambda: new_id(ACTION_ID_PREFIX), sa_type=String(32), primary_key=True
    )
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    actor: str = Field(sa_type=String(128))
    action: str = Field(sa_type=String(64))
    # A session id, a range of times, a selection; none where the action has no object.
    target: str | None = Field(default=None, sa_type=String(255))
    outcome: str = Field(sa_type=String(16))
    detail: str | None = Field(default=None, sa_type=String(500))
    # The caller's address, for routes (a command has none).
    client_ip: str | None = Field(default=None, sa_type=String(64))


class ActionRecord(msgspec.Struct, rename="camel"):
    """A row of the trail by column name, and as the API and `audit list --json` show it
    (camelCase)."""

    id: str
    at: datetime
    actor: str
    action: str
    target: str | None
    outcome: Outcome
    detail: str | None
    client_ip: str | None
