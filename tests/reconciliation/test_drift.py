"""Each kind of drift from the three accounts of one session, without servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.onramp.models import SessionRow
from service.reconciliation.drift import compare, reused_transfers

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
TX = "0x" + "ab" * 32
HOUR = timedelta(hours=1)


def ours(**changes: Any) -> SessionRow:
    row = SessionRow(
        "0x52908400098527886E0F7030069857D2E4169EE7",
        "100.00",
        "usd",
        "musd",
        "mezo",
        id="ors_1",
        stripe_session_id="cos_1",
        status="fulfillment_complete",
        destination_amount="98.49",
        transaction_hash=TX,
        delivery_status="confirmed",
        delivered_amount="98.49",
        network_fee_amount="0.01",
        transaction_fee_amount="1.50",
    )
    for name, value in changes.items():
        setattr(row, name, value)
    return row


def theirs(status: str = "fulfillment_complete", **details: Any) -> dict[str, Any]:
    return {
        "id": "cos_1",
        "status": status,
        "transaction_details": {
            "source_amount": "100.00",
            "destination_amount": "98.49",
            "transaction_id": TX,
            "fees": {"network_fee_amount": "0.01", "transaction_fee_amount": "1.50"},
        }
        | details,
    }


def drift(
    mine: SessionRow | None, stripes: dict[str, Any] | None, started: datetime | None = None
) -> list[str]:
    return compare(mine, stripes, delivery_started=started, now=NOW, delivery_timeout=HOUR)


def test_three_accounts_that_agree_have_no_drift() -> None:
    assert drift(ours(), theirs()) == []
    assert drift(ours(source_amount="100.0"), theirs()) == []  # the same amount, written otherwise
    waiting = ours(status="requires_payment", delivery_status="not_started")
    assert drift(waiting, theirs("requires_payment")) == []
    pending = ours(delivery_status="pending", delivered_amount=None)
    assert drift(pending, theirs(), started=NOW - HOUR / 2) == []


@pytest.mark.parametrize(
    ("mine", "stripes", "started", "expected"),
    [
        (None, theirs(), None, ["missing_locally"]),
        (ours(), None, None, ["missing_at_stripe"]),
        (ours(status="requires_payment"), theirs(), None, ["stripe_ahead"]),
        (ours(), theirs("requires_payment"), None, ["local_ahead"]),
        (ours(status="rejected"), theirs(), None, ["status_differs"]),
        (ours(status="requires_payment"), theirs("expired"), None, ["status_differs"]),
        (
            ours(stripe_session_id=None, status="initialized"),
            theirs(),
            None,
            ["stripe_id_not_stored"],
        ),
        (ours(source_amount="90.00"), theirs(), None, ["amount_differs"]),
        (ours(destination_amount="98.00"), theirs(), None, ["amount_differs"]),
        (ours(network_fee_amount=None), theirs(), None, ["fees_differ"]),
        (ours(transaction_hash="0x" + "cd" * 32), theirs(), None, ["transaction_differs"]),
        (ours(delivery_status="failed"), theirs(), None, ["fulfilled_not_delivered"]),
        (ours(delivery_status="not_started"), theirs(), None, ["fulfilled_not_delivered"]),
        (ours(delivery_status="pending"), theirs(), NOW - 2 * HOUR, ["fulfilled_not_delivered"]),
        (
            ours(delivery_status="mismatch", delivered_amount="50"),
            theirs(),
            None,
            ["delivered_short"],
        ),
        (
            ours(delivery_status="mismatch", delivered_amount="0", delivery_detail="wrong token"),
            theirs(destination_amount="98.49"),
            None,
            ["delivered_short"],
        ),
        (
            ours(delivery_status="mismatch", delivered_amount="99.00"),
            theirs(),
            None,
            ["delivery_mismatch"],
        ),
        (
            ours(
                delivery_status="mismatch",
                delivery_detail=f"transfer {TX}:0 already proves session ors_0",
            ),
            theirs(),
            None,
            ["transfer_reused"],
        ),
        (
            ours(source_amount="1.00", delivery_status="failed"),
            theirs(),
            None,
            ["amount_differs", "fulfilled_not_delivered"],
        ),
    ],
)
def test_each_kind_of_drift_is_named(
    mine: SessionRow | None,
    stripes: dict[str, Any] | None,
    started: datetime | None,
    expected: list[str],
) -> None:
    assert drift(mine, stripes, started) == expected


def test_a_transfer_named_by_two_sessions_is_drift_for_the_one_it_did_not_prove() -> None:
    proved = ours()
    other = ours(id="ors_2", stripe_session_id="cos_2", delivery_status="pending")
    elsewhere = ours(id="ors_3", destination_network="base", delivery_status="pending")
    assert reused_transfers([proved, other, elsewhere]) == {"ors_2"}
    assert reused_transfers([proved, elsewhere]) == set()
