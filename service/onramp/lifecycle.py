"""The session lifecycle, declared once: every status, how a session may move, when it is
settled, and which of Stripe's events move it.

Stripe publishes no transition table, so this encodes the contract's rule: a session
moves forward along the lifecycle's `path`; an exit (Stripe's refusal) ends any session
that has not reached the end of the path; nothing ever moves back. Applying the furthest
status seen is then the same whatever order, duplication or subset of updates arrives.

Everything else derives from `LIFECYCLE`: the compare-and-set (`repository.advance`), the
settled predicate in SQL (`models.settled`: the event prune, retention and the partial
index of alembic 0013), the live stream's end, reconciliation's drift, the OpenAPI enums and
`GET /api/v1/config`'s `lifecycle`, which the TypeScript client reads.
`tests/onramp/test_lifecycle.py` holds the SQL copies (index predicate, the NOTIFY
trigger's columns) to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum, auto
from functools import cached_property


class Status(StrEnum):
    """Stripe's statuses of an onramp session (the value is Stripe's own name)."""

    INITIALIZED = auto()
    REQUIRES_PAYMENT = auto()
    FULFILLMENT_PROCESSING = auto()
    FULFILLMENT_COMPLETE = auto()
    REJECTED = auto()


class DeliveryStatus(StrEnum):
    """What the chain says of a fulfilled session's tokens."""

    NOT_STARTED = auto()  # Stripe has not fulfilled the session
    PENDING = auto()  # fulfilled; the transfer is being looked for or confirmed
    CONFIRMED = auto()
    MISMATCH = auto()  # a transfer that does not prove this session
    FAILED = auto()  # no transfer could be checked (reverted, unknown, gone)


@dataclass(frozen=True)
class Lifecycle:
    """A lifecycle: the statuses a purchase moves through in order (`path`), the statuses
    that end it early from anywhere on that path (`exits`), and the deliveries that
    settle a session at the end of the path."""

    path: tuple[str, ...]
    exits: tuple[str, ...]
    # Every status a delivery has, in order, and those the chain has decided (a verdict).
    deliveries: tuple[str, ...]
    decided_deliveries: frozenset[str]
    # Stripe's event types whose `data.object` is the session as it now stands: the
    # session moves to that object's status. Other events are stored and ignored.
    event_types: frozenset[str]

    def __post_init__(self) -> None:
        # Plain strings, whatever was declared: as rows, JSON and click's choices hold them
        # (click takes an Enum's member names, not its values).
        for name in ("path", "exits", "deliveries"):
            object.__setattr__(self, name, tuple(str(value) for value in getattr(self, name)))
        for name in ("decided_deliveries", "event_types"):
            object.__setattr__(self, name, frozenset(str(value) for value in getattr(self, name)))

    @property
    def statuses(self) -> tuple[str, ...]:
        """Every status, the path's first (a new session's) and the exits last."""
        return (*self.path, *self.exits)

    @property
    def initial(self) -> str:
        return self.path[0]

    @property
    def fulfilled(self) -> str:
        """The end of the path: Stripe has sent the tokens, and the chain is asked."""
        return self.path[-1]

    @cached_property
    def final(self) -> frozenset[str]:
        """The statuses nothing moves a session from."""
        return frozenset({self.fulfilled, *self.exits})

    @cached_property
    def settled_statuses(self) -> frozenset[str]:
        """Final statuses with no delivery to wait for: settled as soon as reached."""
        return frozenset(self.exits)

    def is_status(self, value: str) -> bool:
        return value in self.path or value in self.exits

    def advance(self, current: str, incoming: str) -> str:
        """The status after `incoming` is seen by a session at `current`."""
        if incoming == current or current in self.final or not self.is_status(incoming):
            return current
        if incoming in self.exits:
            return incoming
        if current in self.path and self.path.index(incoming) > self.path.index(current):
            return incoming
        return current

    def statuses_before(self, status: str) -> tuple[str, ...]:
        """The statuses from which `status` is a step forward (empty for an unknown one)."""
        return tuple(s for s in self.statuses if s != status and self.advance(s, status) == status)

    def is_settled(self, status: str, delivery_status: str) -> bool:
        """Nothing more is expected: an exit, or the chain's verdict on the delivery."""
        return status in self.settled_statuses or (
            status == self.fulfilled and delivery_status in self.decided_deliveries
        )

    @property
    def settling_deliveries(self) -> tuple[str, ...]:
        """The decided deliveries, in their declared order."""
        return tuple(d for d in self.deliveries if d in self.decided_deliveries)


LIFECYCLE = Lifecycle(
    path=(
        Status.INITIALIZED,
        Status.REQUIRES_PAYMENT,
        Status.FULFILLMENT_PROCESSING,
        Status.FULFILLMENT_COMPLETE,
    ),
    exits=(Status.REJECTED,),
    deliveries=tuple(DeliveryStatus),
    decided_deliveries=frozenset(
        {DeliveryStatus.CONFIRMED, DeliveryStatus.MISMATCH, DeliveryStatus.FAILED}
    ),
    # Stripe's documented name, and the spelling some integrations use.
    event_types=frozenset({"crypto.onramp_session_updated", "crypto.onramp_session.updated"}),
)
