"""The table of replicas' settings fingerprints (service/operations/fingerprints.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlmodel import Field, SQLModel

from service.columns import UtcDateTime


class ReplicaSettings(SQLModel, table=True):
    """What one process of a deployment last said of its shared settings: a fingerprint
    and a short digest per setting, never a value. One row per replica name and role
    (`api` or `worker`), since an API and a worker may share a host's name."""

    __tablename__ = "replica_settings"

    replica_name: str = Field(sa_type=String(100), primary_key=True)
    role: str = Field(sa_type=String(16), primary_key=True)
    # SHA-256 over every shared setting, a secret's value entering only as its own hash.
    fingerprint: str = Field(sa_type=String(64))
    # JSON: each shared setting's name and the first 16 hex digits of its digest, so that
    # a warning can say which settings differ without saying what they hold.
    digests: str = Field(sa_type=Text)
    last_seen_at: datetime = Field(sa_type=UtcDateTime, index=True)
