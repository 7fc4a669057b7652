"""Which sessions changed, for the open event streams of this process.

Changes are made by any replica (webhooks, the delivery worker, operators' commands), so
a stream cannot learn of them from its own process. On PostgreSQL a trigger sends
`NOTIFY onramp_session_changed, '<id>'` as a change commits (alembic 0009), and this
process keeps one listening connection for all its streams. SQLite has no notifications
and may be written by other processes (`--workers`, `onramp worker`), so the watched
sessions are read again on a short interval instead.

Each change is read once per process, with the others that arrived meanwhile, and handed
to every stream of its session. A change made in this very process needs neither: its
transaction tells this fan-out the row as it committed (`repository.SESSION_CHANGED`,
service/notices.py), so its streams have it at once, on SQLite too, and each state in
turn: a read after two quick changes would see only the second.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import structlog
from psycopg import AsyncConnection
from sqlalchemy import literal, select

from service.database import KEEPALIVES, Database
from service.onramp import repository
from service.onramp.models import SessionRow
from service.onramp.repository import Chosen
from service.sql import Sql

CHANNEL = "onramp_session_changed"
# Whether a quiet listening connection still answers.
_PROBE = Sql(select(literal(1)))
READ_BATCH = 500
PROBE_SECONDS = 30.0  # a listening connection this quiet is asked whether it still answers
log = structlog.get_logger("onramp.live")


# Rows a stream has not taken yet; past this many (a client that does not read), the
# oldest go: each row is the whole session, so the newest is never lost.
WATCH_QUEUE = 64


@dataclass(eq=False)
class Watch:
    """One stream's view of its session: the rows handed to it in order, and a flag set
    while any is waiting. Each state a change committed in this process is handed on
    as its transaction left it, so that a stream sees every status even when two
    changes land before it reads."""

    changed: asyncio.Event = field(default_factory=asyncio.Event)
    rows: deque[SessionRow] = field(default_factory=lambda: deque(maxlen=WATCH_QUEUE))

    def hand(self, row: SessionRow) -> None:
        self.rows.append(row)
        self.changed.set()

    def take(self) -> SessionRow | None:
        """The oldest row waiting, if any."""
        row = self.rows.popleft() if self.rows else None
        if not self.rows:
            self.changed.clear()
        return row


class SessionChanges:
    """The per-process fan-out from change notices to the streams watching a session."""

    def __init__(self, database: Database, poll_seconds: float = 0.5) -> None:
        self.database = database
        self.poll_seconds = poll_seconds
        self._watches: dict[str, set[Watch]] = {}
        self._task: asyncio.Task[None] | None = None
        self._due: set[str] = set()
        self._reader: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # This process's own changes, at once and each as it committed.
        self._stop_hearing = database.notices.listen(repository.SESSION_CHANGED, self.committed)

    def committed(self, row: SessionRow) -> None:
        """A change this process committed: handed to the session's streams now, on
        their event loop (the writer may run on another thread's)."""
        loop = self._loop
        if row.id not in self._watches or loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._hand(row)
        else:
            loop.call_soon_threadsafe(self._hand, row)

    @contextlib.asynccontextmanager
    async def watch(self, session_id: str) -> AsyncIterator[Watch]:
        """Watch a session from now on; the caller reads it once after entering, so that
        no change falls between its first read and the first notice."""
        watch = Watch()
        self._loop = asyncio.get_running_loop()
        self._watches.setdefault(session_id, set()).add(watch)
        self._start()
        try:
            yield watch
        finally:
            watches = self._watches.get(session_id)
            if watches is not None:
                watches.discard(watch)
                if not watches:
                    del self._watches[session_id]

    async def stop(self) -> None:
        self._stop_hearing()
        for task in (self._task, self._reader):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = None

    def _start(self) -> None:
        if self._task is None or self._task.done():
            source = self._poll if self.database.pool is None else self._listen
            self._task = asyncio.create_task(source(), name="onramp-live-changes")

    def notice(self, session_id: str) -> None:
        """A session may have changed. Notices are read in batches: those that arrive
        while a read is under way are read together by the next one, none is lost."""
        if session_id not in self._watches:
            return
        self._due.add(session_id)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_due())

    async def _read_due(self) -> None:
        pause = 0.5
        while self._due:
            ids = tuple(itertools.islice(self._due, READ_BATCH))
            self._due.difference_update(ids)
            try:
                rows = await self._read(ids)
            except Exception as error:  # read them again, or a stream would keep a stale view
                log.warning("live_read_failed", sessions=len(ids), error=type(error).__name__)
                self._due.update(i for i in ids if i in self._watches)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
                continue
            pause = 0.5
            for row in rows:
                self._hand(row)

    async def _read(self, ids: tuple[str, ...]) -> list[SessionRow]:
        return await repository.list_sessions(self.database, Chosen(ids=ids), limit=None)

    def _hand(self, row: SessionRow) -> None:
        for watch in tuple(self._watches.get(row.id, ())):
            watch.hand(row)

    async def _listen(self) -> None:
        """One LISTEN connection for the process, opened again after a loss; after each
        (re)connection every watched session is read, as notices may have been missed."""
        pause = 0.5
        settings = self.database.settings
        while True:
            try:
                async with await AsyncConnection.connect(
                    settings.libpq_url,
                    autocommit=True,
                    connect_timeout=settings.connect_timeout_seconds,
                    application_name="onramp-live",
                    # No statement_timeout: it would not end a quiet LISTEN (no statement
                    # runs while it waits), and the probe below has its own limit.
                    **KEEPALIVES,
                ) as connection:
                    # SQL text: LISTEN has no SQLAlchemy expression.
                    await connection.execute(f"LISTEN {CHANNEL}")
                    pause = 0.5
                    for session_id in tuple(self._watches):
                        self.notice(session_id)
                    while True:
                        async for notify in connection.notifies(timeout=PROBE_SECONDS):
                            self.notice(notify.payload)
                        # Quiet for a while: make sure the connection still answers.
                        async with asyncio.timeout(settings.connect_timeout_seconds):
                            await connection.execute(_PROBE.psycopg_query, _PROBE.values({}))
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("live_listen_lost", error=type(error).__name__, retry_in=pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)

    async def _poll(self) -> None:
        """SQLite: the watched sessions read together on an interval; a row is handed on
        when first seen and whenever its `updated_at` moves (streams skip what they sent)."""
        seen: dict[str, object] = {}
        while True:
            await asyncio.sleep(self.poll_seconds)
            ids = tuple(self._watches)
            seen = {key: value for key, value in seen.items() if key in self._watches}
            rows: list[SessionRow] = []
            try:
                for start in range(0, len(ids), READ_BATCH):
                    rows += await self._read(ids[start : start + READ_BATCH])
            except Exception as error:  # the next round reads them all again
                log.warning("live_poll_failed", error=type(error).__name__)
                continue
            for row in rows:
                if seen.get(row.id) != row.updated_at:
                    seen[row.id] = row.updated_at
                    self._hand(row)
