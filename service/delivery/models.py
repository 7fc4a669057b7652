"""Delivery's own tables: the checks still to decide, and the ledger of credited transfers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Text, text
from sqlmodel import Field, SQLModel

from service.columns import UtcDateTime, utcnow


class DeliveryCheck(SQLModel, table=True):
    """A promise to verify a session's delivery on chain, kept until it is decided.

    Written in the same transaction that records Stripe's fulfilment, so a
    fulfilled session can never be left without a check.
    """

    __tablename__ = "delivery_checks"
    # Finished checks keep their last `due_at`: the worker's claim reads only the
    # unfinished ones, the retention job only the finished ones.
    __table_args__ = (
        Index(
            "ix_delivery_checks_due",
            "due_at",
            postgresql_where=text("finished_at IS NULL"),
            sqlite_where=text("finished_at IS NULL"),
        ),
        Index(
            "ix_delivery_checks_finished_at",
            "finished_at",
            postgresql_where=text("finished_at IS NOT NULL"),
            sqlite_where=text("finished_at IS NOT NULL"),
        ),
    )

    onramp_session_id: str = Field(sa_type=String(32), primary_key=True)
    due_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    claimed_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # Where a search for an unknown transaction starts: the first block after the
    # session was created, found once and kept.
    search_from_block: int | None = Field(default=None, sa_type=BigInteger)
    # A transaction the worker found for a session that Stripe has named none for; a
    # transaction id from Stripe replaces it.
    found_transaction_hash: str | None = Field(default=None, sa_type=String(66))
    # When the time-out starts: fulfilment, or the arrival of a late transaction id.
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    # The W3C traceparent of the request that scheduled (or reopened) the check, when
    # that process traced: the round that decides it links to it (service/tracing).
    traceparent: str | None = Field(default=None, sa_type=Text)


class DeliveryCredit(SQLModel, table=True):
    """One on-chain transfer (a `Transfer` log) counted as one session's delivery.

    The primary key is the transfer itself, so the database, not only the code, keeps a
    transfer from proving two sessions, whichever workers or replicas race for it.
    """

    __tablename__ = "delivery_credits"

    chain_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    transaction_hash: str = Field(sa_type=String(66), primary_key=True)
    # The log's position among its transaction's logs, which a reorganisation that
    # moves the transaction to another block leaves as it was.
    log_index: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    onramp_session_id: str = Field(sa_type=String(32), index=True)
    # Credited because the worker found it, not because the session named it: a
    # session that Stripe says it paid with this transfer takes it over.
    found_by_search: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    credited_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
