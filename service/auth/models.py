"""Nonces this service issued for sign-in messages."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Integer, String, text
from sqlmodel import Field, SQLModel

from service.columns import UtcDateTime


class AuthNonce(SQLModel, table=True):
    """A single-use challenge: `used_at` is set by the one verify call that wins it, or
    by the last verify that may ask the chain (`chain_checks`) when it fails."""

    __tablename__ = "auth_nonces"
    # The nonces one client asked for one wallet, for keeping only the newest few.
    __table_args__ = (
        Index("ix_auth_nonces_wallet_asker_issued", "wallet_address", "requested_by", "issued_at"),
    )

    nonce: str = Field(sa_type=String(64), primary_key=True)
    wallet_address: str = Field(sa_type=String(42))
    issued_at: datetime = Field(sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime, index=True)
    used_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # The client network that asked (an IPv4 address, an IPv6 /64).
    requested_by: str | None = Field(default=None, sa_type=String(64))
    # Verifies that asked the chain with this nonce (rules.CHAIN_CHECKS_PER_NONCE at most).
    chain_checks: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default=text("0"))
    )


class StreamTicket(SQLModel, table=True):
    """A ticket to open one session's event stream without an Authorization header (a
    browser's EventSource cannot send one): issued to the session's owner, used once.

    Only the ticket's SHA-256 is kept: a row read from the database or a backup opens
    no stream."""

    __tablename__ = "stream_tickets"
    # The tickets one wallet holds, for keeping only the newest few.
    __table_args__ = (Index("ix_stream_tickets_wallet_issued", "wallet_address", "issued_at"),)

    digest: str = Field(sa_type=String(64), primary_key=True)
    wallet_address: str = Field(sa_type=String(42))
    session_id: str = Field(sa_type=String(32))
    issued_at: datetime = Field(sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime, index=True)
    # Set by the one request that opened a stream with it.
    used_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
