"""A round's lease is renewed only while it is still the round's: a renewal never
takes back a check that was reopened, or that another worker claimed once the lease
ran out."""

from __future__ import annotations

from datetime import datetime, timedelta

from service.columns import utcnow
from service.database import Database
from service.delivery import checks
from service.delivery.lease import RoundClaims
from tests.delivery.conftest import check_row, fulfilled_session

A_MINUTE = timedelta(minutes=1)


async def claimed(database: Database, count: int) -> tuple[list[str], datetime]:
    ids = [(await fulfilled_session(database, "1", None)).id for _ in range(count)]
    now = utcnow()
    lease = RoundClaims.lease_from(now)
    async with database.transaction() as sql:
        assert sorted(await checks.claim_due(sql, now, lease, 10)) == sorted(ids)
    return ids, lease


async def test_a_renewal_extends_the_lease_the_round_holds(database: Database) -> None:
    ids, lease = await claimed(database, 2)
    claims = RoundClaims(database, ids, lease, A_MINUTE)
    await claims.renew()
    assert claims.held == set(ids)
    assert claims.until > lease
    for session_id in ids:
        assert (await check_row(database, session_id)).claimed_until == claims.until


async def test_a_check_reopened_meanwhile_is_let_go(database: Database) -> None:
    (kept, reopened), lease = await claimed(database, 2)
    async with database.transaction() as sql:
        await checks.reopen_check(sql, reopened, utcnow())
    claims = RoundClaims(database, [kept, reopened], lease, A_MINUTE)
    await claims.renew()
    assert claims.held == {kept}
    assert (await check_row(database, kept)).claimed_until == claims.until
    assert (await check_row(database, reopened)).claimed_until is None


async def test_a_check_another_worker_claimed_after_the_lease_stays_theirs(
    database: Database,
) -> None:
    (session_id,), lease = await claimed(database, 1)
    later = lease + timedelta(seconds=1)
    theirs = RoundClaims.lease_from(later)
    async with database.transaction() as sql:
        assert await checks.claim_due(sql, later, theirs, 10) == [session_id]
        renewed = await checks.renew_claims(sql, [session_id], lease, later, later + A_MINUTE)
    assert renewed == set()
    assert (await check_row(database, session_id)).claimed_until == theirs


async def test_a_lease_already_past_is_not_renewed(database: Database) -> None:
    """Past its end, another worker may be claiming the check this very moment."""
    (session_id,), lease = await claimed(database, 1)
    past = lease + timedelta(milliseconds=1)
    async with database.transaction() as sql:
        renewed = await checks.renew_claims(sql, [session_id], lease, past, past + A_MINUTE)
    assert renewed == set()
    assert (await check_row(database, session_id)).claimed_until == lease
