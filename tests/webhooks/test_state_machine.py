"""The status state machine: forward only, rejected terminal, order-independent."""

from __future__ import annotations

from functools import reduce

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.onramp.state import STATUSES, advance_status, statuses_before

HAPPY = ["requires_payment", "fulfillment_processing", "fulfillment_complete"]


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    """A session's real event sequence, then what arrives: any subset, duplicated, shuffled."""
    length = draw(st.integers(1, 3))
    sequence = HAPPY[:length]
    if length < 3 and draw(st.booleans()):
        sequence = [*sequence, "rejected"]
    arrived = draw(st.lists(st.sampled_from(sequence), min_size=1, max_size=10))
    return sequence, draw(st.permutations(arrived))


def fold(start: str, events: list[str]) -> str:
    return reduce(advance_status, events, start)


@given(deliveries())
def test_the_final_status_is_the_furthest_delivered(case: tuple[list[str], list[str]]) -> None:
    sequence, arrived = case
    furthest = max(arrived, key=sequence.index)
    final = fold("initialized", arrived)
    assert final == furthest
    assert fold(final, arrived) == final  # replaying the log changes nothing


@pytest.mark.parametrize(
    ("current", "incoming", "expected"),
    [
        ("initialized", "requires_payment", "requires_payment"),
        ("requires_payment", "initialized", "requires_payment"),
        ("fulfillment_processing", "requires_payment", "fulfillment_processing"),
        ("initialized", "fulfillment_complete", "fulfillment_complete"),
        ("fulfillment_processing", "rejected", "rejected"),
        ("fulfillment_complete", "rejected", "fulfillment_complete"),
        ("rejected", "fulfillment_complete", "rejected"),
        ("rejected", "requires_payment", "rejected"),
        ("initialized", "paid", "initialized"),
    ],
)
def test_transitions(current: str, incoming: str, expected: str) -> None:
    assert advance_status(current, incoming) == expected


@pytest.mark.parametrize("status", STATUSES)
def test_statuses_before_are_exactly_those_that_move_forward(status: str) -> None:
    before = statuses_before(status)
    assert status not in before
    for other in STATUSES:
        assert (other in before) == (other != status and advance_status(other, status) == status)


def test_nothing_comes_before_an_unknown_status() -> None:
    assert statuses_before("paid") == ()
