"""The session status state machine: forward only, `rejected` terminal, in any arrival order.

Stripe publishes no transition table, so this encodes the contract's rule: statuses move
along `initialized -> requires_payment -> fulfillment_processing -> fulfillment_complete`;
`rejected` can end any session that is not complete; nothing ever moves back. Applying
the furthest status seen is then the same whatever order, duplication or subset of
updates arrives.
"""

from __future__ import annotations

from typing import Literal

Status = Literal[
    "initialized",
    "requires_payment",
    "fulfillment_processing",
    "fulfillment_complete",
    "rejected",
]
STATUSES: tuple[Status, ...] = (
    "initialized",
    "requires_payment",
    "fulfillment_processing",
    "fulfillment_complete",
    "rejected",
)
_HAPPY_PATH: tuple[Status, ...] = STATUSES[:4]
FINAL: frozenset[str] = frozenset({"fulfillment_complete", "rejected"})


def is_status(value: str) -> bool:
    return value in STATUSES


def advance_status(current: str, incoming: str) -> str:
    """The status after `incoming` is seen by a session at `current`."""
    if incoming == current or current in FINAL or not is_status(incoming):
        return current
    if incoming == "rejected":
        return "rejected"
    if _HAPPY_PATH.index(incoming) > _HAPPY_PATH.index(current):
        return incoming
    return current


def statuses_before(status: str) -> tuple[str, ...]:
    """The statuses from which `status` is a step forward (empty for an unknown one)."""
    return tuple(s for s in STATUSES if s != status and advance_status(s, status) == status)
