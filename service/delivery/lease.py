"""A round's claims on its checks: a short lease, renewed while the round runs.

A worker killed mid-round (SIGKILL, out of memory, a lost host) hands nothing back, so
its checks wait out the lease before another worker takes them. The lease is therefore
short (`LEASE_SECONDS`) and renewed every `RENEW_EVERY_SECONDS` while the round runs,
rather than long enough for the slowest round: a killed worker's checks are taken
again within about `LEASE_SECONDS`, and a slow round keeps them. A round still running
after the longest a round can legitimately take stops renewing, so a hung round lets
its checks go as an expired lease would.

The lease's end is its token: a renewal and the round's record both name the lease the
round holds, so neither touches a check another worker has claimed since. In this
process, renewing and recording take turns (one lock), so the record always names the
lease that stands.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import structlog

from service.columns import utcnow
from service.database import Database
from service.delivery import checks

log = structlog.get_logger("onramp.delivery")

LEASE_SECONDS = 10.0
# Three renewals fit in a lease: one slow or failed renewal does not lose the checks.
RENEW_EVERY_SECONDS = 3.0


class RoundClaims:
    """The checks one round claimed until `until`, renewed in the background."""

    def __init__(
        self,
        database: Database,
        session_ids: list[str],
        until: datetime,
        longest_round: timedelta,
    ) -> None:
        self.database = database
        self.held = set(session_ids)
        self.until = until
        self._renew_until = time.monotonic() + longest_round.total_seconds()
        self._turn = asyncio.Lock()
        self._renewing: asyncio.Task[None] | None = None

    @staticmethod
    def lease_from(now: datetime) -> datetime:
        return now + timedelta(seconds=LEASE_SECONDS)

    @contextlib.asynccontextmanager
    async def renewed(self) -> AsyncIterator[RoundClaims]:
        """Renew the claims until the block ends."""
        self._renewing = asyncio.ensure_future(self._renew())
        try:
            yield self
        finally:
            await self._stop_renewing()

    @contextlib.asynccontextmanager
    async def standing(self) -> AsyncIterator[datetime]:
        """The lease that stands, with no renewal until the block ends: for the
        statements that end or hand back the claims."""
        async with self._turn:
            yield self.until

    async def _stop_renewing(self) -> None:
        if self._renewing is None:
            return
        async with self._turn:  # never cut a renewal short: its outcome sets `until`
            self._renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._renewing
        self._renewing = None

    async def _renew(self) -> None:
        while self.held:
            await asyncio.sleep(RENEW_EVERY_SECONDS)
            async with self._turn:
                if time.monotonic() > self._renew_until:
                    log.warning("delivery_round_overran", checks=len(self.held))
                    return
                await self.renew()

    async def renew(self) -> None:
        """Extend the claims the round still holds; those it lost are let go."""
        now = utcnow()
        renewed = self.lease_from(now)
        try:
            async with self.database.transaction() as sql:
                kept = await checks.renew_claims(sql, sorted(self.held), self.until, now, renewed)
        except Exception as error:  # the next renewal tries again; the lease has room
            log.warning("delivery_lease_not_renewed", error=str(error))
            return
        if lost := self.held - kept:
            log.warning("delivery_claims_lost", checks=len(lost))
        self.held = kept
        if kept:
            self.until = renewed
