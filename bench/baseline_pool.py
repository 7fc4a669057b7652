"""The baselines' one PostgreSQL pool: psycopg's own, sized like the service's hot-path
pool (4 to 10 connections, autocommit, explicit transactions where there are several
statements), so that the database side of every comparison is the same."""

from __future__ import annotations

import os
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
    os.environ["BASELINE_DATABASE_URL"],
    min_size=4,
    max_size=10,
    kwargs={"autocommit": True},
    open=False,
)
